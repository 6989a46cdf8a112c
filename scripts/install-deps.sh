#!/usr/bin/env bash
# install-deps.sh installs what vectorheal's tests and demo need on Debian 12 / Ubuntu:
# PostgreSQL 15 with contrib and server headers, pgvector 0.8 (built from Debian's source
# package of a newer release), Prometheus + promtool and Alertmanager + amtool.
#
# It is idempotent: when everything is already there it prints one line and exits 0.
# The system's apt sources are never changed: pgvector's source comes through a private apt
# configuration under $VECTORHEAL_APT_DIR (default /var/cache/vectorheal-apt).
set -euo pipefail

PG_MAJOR=15
PGVECTOR_MIN=0.8.0
# pgvector >= 0.8 is packaged in Debian trixie and Ubuntu plucky; their source packages build
# against PostgreSQL 15. Both can be overridden, e.g. for a local mirror.
. /etc/os-release 2>/dev/null || true
case "${ID:-debian}" in
ubuntu)
	SRC_SUITE=${VECTORHEAL_PGVECTOR_SUITE:-plucky}
	KEYRING=/usr/share/keyrings/ubuntu-archive-keyring.gpg
	;;
*)
	SRC_SUITE=${VECTORHEAL_PGVECTOR_SUITE:-trixie}
	KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
	;;
esac
APT_DIR=${VECTORHEAL_APT_DIR:-/var/cache/vectorheal-apt}

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing: run this script as root"
	SUDO="sudo"
fi

pg_bin=/usr/lib/postgresql/$PG_MAJOR/bin
pg_sharedir=/usr/share/postgresql/$PG_MAJOR

# version_ge A B: A >= B in dpkg's version order.
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

installed_pgvector() {
	local ctl=$pg_sharedir/extension/vector.control
	[ -f "$ctl" ] || return 1
	sed -n "s/^default_version = '\(.*\)'/\1/p" "$ctl"
}

missing_packages() {
	local pkgs=(postgresql-$PG_MAJOR postgresql-contrib postgresql-server-dev-$PG_MAJOR prometheus prometheus-alertmanager)
	local p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
	done
}

need_pgvector() {
	local v
	v=$(installed_pgvector) || return 0
	version_ge "$v" "$PGVECTOR_MIN" && return 1
	return 0
}

apt_updated=0
apt_update_once() {
	if [ $apt_updated -eq 0 ]; then
		log "apt-get update"
		$SUDO apt-get update -q >/dev/null || die "apt-get update failed"
		apt_updated=1
	fi
}

install_packages() {
	local missing
	missing=$(missing_packages | tr '\n' ' ')
	[ -n "${missing// /}" ] || return 0
	apt_update_once
	log "installing Debian packages: $missing"
	# Package scripts must not try to start services on a machine without an init system.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null \
		|| die "apt-get install $missing failed"
}

# mirror_uri prints the first archive URI the system already uses, so the private source list
# points at the same mirror the machine is configured for ($VECTORHEAL_PGVECTOR_MIRROR wins).
mirror_uri() {
	if [ -n "${VECTORHEAL_PGVECTOR_MIRROR:-}" ]; then
		echo "$VECTORHEAL_PGVECTOR_MIRROR"
		return
	fi
	local uri
	uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
	if [ -z "$uri" ]; then
		uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v -- '-security' | grep -Ei 'debian|ubuntu' | head -n1 || true)
	fi
	[ -n "$uri" ] || die "cannot find a Debian/Ubuntu mirror in /etc/apt sources (set VECTORHEAL_PGVECTOR_MIRROR) to fetch pgvector's source from"
	echo "$uri"
}

build_pgvector() {
	need_pgvector || return 0
	local build_deps=(build-essential dpkg-dev)
	local p missing=()
	for p in "${build_deps[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		apt_update_once
		log "installing build tools: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
			|| die "apt-get install ${missing[*]} failed"
	fi

	local uri
	uri=$(mirror_uri)
	$SUDO mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/etc"
	echo "deb-src [signed-by=$KEYRING] $uri $SRC_SUITE main" | $SUDO tee "$APT_DIR/etc/sources.list" >/dev/null
	local aptopts=(-o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
		-o "Dir::State::Lists=$APT_DIR/lists" -o "APT::Sandbox::User=root")
	log "fetching pgvector source from Debian $SRC_SUITE (private apt config in $APT_DIR)"
	$SUDO apt-get "${aptopts[@]}" update -q >/dev/null || die "apt-get update of the private $SRC_SUITE source list failed"

	local work
	work=$(mktemp -d)
	(cd "$work" && apt-get "${aptopts[@]}" source --download-only -q pgvector >/dev/null 2>&1) \
		|| die "apt-get source pgvector from $SRC_SUITE failed"
	local dsc
	dsc=$(ls "$work"/pgvector_*.dsc | head -n1)
	[ -n "$dsc" ] || die "no pgvector .dsc downloaded"
	(cd "$work" && dpkg-source --no-check -x "$dsc" src >/dev/null) || die "dpkg-source -x $dsc failed"
	log "building $(basename "$dsc" .dsc) against PostgreSQL $PG_MAJOR"
	make -C "$work/src" -s PG_CONFIG="$pg_bin/pg_config" OPTFLAGS="" >/dev/null 2>"$work/build.log" \
		|| { cat "$work/build.log" >&2; die "pgvector build failed"; }
	$SUDO make -C "$work/src" -s PG_CONFIG="$pg_bin/pg_config" install >/dev/null \
		|| die "pgvector install failed"
	rm -rf "$work"
	log "pgvector $(installed_pgvector) installed"
}

# check_go makes sure a Go toolchain that can build vectorheal is on the PATH. Go 1.21 or
# newer is enough: it fetches the release go.mod asks for through the module proxy by itself.
check_go() {
	local gobin
	gobin=$(command -v go || true)
	[ -n "$gobin" ] || [ ! -x /usr/local/go/bin/go ] || gobin=/usr/local/go/bin/go
	if [ -z "$gobin" ]; then
		apt_update_once
		if apt-cache policy golang-go 2>/dev/null | grep -q 'Candidate: 2:1\.\(2[1-9]\|[3-9][0-9]\)'; then
			log "installing Debian package golang-go"
			DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends golang-go >/dev/null \
				|| die "apt-get install golang-go failed"
			return
		fi
		die "no Go toolchain found and this release's golang-go is older than 1.21: install Go 1.21 or newer (go.dev/dl) and put it on the PATH"
	fi
	local v
	v=$("$gobin" env GOVERSION 2>/dev/null | sed 's/^go//')
	[ -n "$v" ] && version_ge "$v" 1.21 || die "$gobin is Go ${v:-of unknown version}; Go 1.21 or newer is needed"
	case ":$PATH:" in *":$(dirname "$gobin"):"*) ;; *) log "note: put $(dirname "$gobin") on your PATH for make" ;; esac
}

main() {
	local missing
	check_go
	missing=$(missing_packages | tr -d '\n')
	if [ -z "$missing" ] && ! need_pgvector; then
		log "all dependencies present (PostgreSQL $PG_MAJOR, pgvector $(installed_pgvector), Prometheus, Alertmanager)"
		exit 0
	fi
	install_packages
	build_pgvector
	for b in "$pg_bin/initdb" "$pg_bin/postgres" /usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/amtool; do
		[ -x "$b" ] || die "$b missing after install"
	done
	log "done"
}

main "$@"
