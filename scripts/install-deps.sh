#!/usr/bin/env bash
# install-deps.sh installs what vectorheal's tests and demo need on Debian 12 or Ubuntu 24.04
# (`install-deps.sh --detect` prints what this system would get and installs nothing):
# PostgreSQL (15 on Debian 12, 16 on Ubuntu 24.04) with contrib and server headers, a current pgvector (built from the newest
# source package Debian ships), and two Prometheus stacks:
#   - the distribution's Prometheus + promtool and Alertmanager + amtool (Debian 12: 2.42 / 0.25);
#   - a current Prometheus 3 + promtool and Alertmanager + amtool, built with `go install` from
#     the Go module proxy into $VECTORHEAL_STACK_DIR/bin (default /opt/vectorheal/stack-current).
# `make test` runs the tests that talk to Prometheus or Alertmanager on both.
#
# It is idempotent: when everything is already there, at the versions below, it prints one
# line and exits 0. The system's apt sources are never changed: pgvector's source comes
# through a private apt configuration under $VECTORHEAL_APT_DIR (default /var/cache/vectorheal-apt).
set -euo pipefail

# detect_platform sets what differs between the supported systems from /etc/os-release
# ($VECTORHEAL_OS_RELEASE reads another file, for a dry check with --detect):
#   PG_MAJOR     the PostgreSQL the distribution packages (postgresql-N, postgresql-server-dev-N);
#   SRC_SUITE    the suite whose pgvector source package is built (the packaged pgvector is too
#                old on both: Debian 12 has none, Ubuntu 24.04's postgresql-16-pgvector is 0.6);
#   PGVECTOR_MIN an installed pgvector older than this is rebuilt.
# The suite, the minimum and the mirror can be overridden, e.g. for a local mirror or an older
# release. A mirror or cache may list a suite's newest source while its pool lacks the files;
# then the pinned fallback is fetched from the pool instead, checked against its SHA-256.
# Anything else stops here with an error that names what is unsupported.
detect_platform() {
	local release=${VECTORHEAL_OS_RELEASE:-/etc/os-release}
	[ -r "$release" ] || die "cannot read $release: unsupported system (supported: Debian 12, Ubuntu 24.04)"
	local ID="" VERSION_ID="" PRETTY_NAME=""
	# shellcheck disable=SC1090
	. "$release"
	FALLBACK_DSC=""
	FALLBACK_SHA256=""
	case "$ID:$VERSION_ID" in
	debian:12)
		# Debian sid carries the newest pgvector (0.8.7); its source builds against PostgreSQL 15.
		PG_MAJOR=15
		SRC_SUITE=${VECTORHEAL_PGVECTOR_SUITE:-sid}
		PGVECTOR_MIN=${VECTORHEAL_PGVECTOR_MIN:-0.8.6}
		KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
		FALLBACK_DSC=pgvector_0.8.6-1.dsc
		FALLBACK_SHA256=d08de2aa48b7cb70319cc896aa3d95514690d1009f96579dbe6b23c59634f4e6
		;;
	ubuntu:24.04)
		# Ubuntu 24.04: postgresql-16, prometheus 2.45 and prometheus-alertmanager 0.26 from the
		# archive; pgvector from the source package of Ubuntu 26.04 (an LTS: its files stay on the
		# archive), built against PostgreSQL 16. Not exercised in CI (CI runs on Debian 12).
		PG_MAJOR=16
		SRC_SUITE=${VECTORHEAL_PGVECTOR_SUITE:-resolute}
		PGVECTOR_MIN=${VECTORHEAL_PGVECTOR_MIN:-0.8.0}
		KEYRING=/usr/share/keyrings/ubuntu-archive-keyring.gpg
		;;
	*)
		die "unsupported system: ${PRETTY_NAME:-${ID:-unknown} ${VERSION_ID:-}} (ID=${ID:-?} VERSION_ID=${VERSION_ID:-?}); supported: Debian 12 (PostgreSQL 15) and Ubuntu 24.04 (PostgreSQL 16). Elsewhere install PostgreSQL 15-17 with contrib and server headers, pgvector 0.8 or newer, Prometheus and Alertmanager yourself, and point the tests at them with VECTORHEAL_PG_BIN, VECTORHEAL_PROMETHEUS, VECTORHEAL_PROMTOOL, VECTORHEAL_ALERTMANAGER and VECTORHEAL_AMTOOL"
		;;
	esac
	OS_NAME="${PRETTY_NAME:-$ID $VERSION_ID}"
	pg_bin=/usr/lib/postgresql/$PG_MAJOR/bin
	pg_sharedir=/usr/share/postgresql/$PG_MAJOR
	PACKAGES=(postgresql-$PG_MAJOR postgresql-contrib postgresql-server-dev-$PG_MAJOR prometheus prometheus-alertmanager)
}
APT_DIR=${VECTORHEAL_APT_DIR:-/var/cache/vectorheal-apt}

# The current stack. Prometheus's Go module version v0.3MM.P is release 3.MM.P. Alertmanager
# releases from 0.32 on no longer ship the web UI's assets in their Go module and do not build
# with `go install`; 0.31.1 is the newest that does.
STACK_DIR=${VECTORHEAL_STACK_DIR:-/opt/vectorheal/stack-current}
PROMETHEUS_CURRENT=v0.316.0
ALERTMANAGER_CURRENT=v0.31.1

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing: run this script as root"
	SUDO="sudo"
fi

# version_ge A B: A >= B in dpkg's version order.
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

installed_pgvector() {
	local ctl=$pg_sharedir/extension/vector.control
	[ -f "$ctl" ] || return 1
	sed -n "s/^default_version = '\(.*\)'/\1/p" "$ctl"
}

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
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
	log "fetching pgvector source from $SRC_SUITE (private apt config in $APT_DIR)"
	$SUDO apt-get "${aptopts[@]}" update -q >/dev/null || die "apt-get update of the private $SRC_SUITE source list failed"

	local work
	work=$(mktemp -d)
	if ! (cd "$work" && apt-get "${aptopts[@]}" source --download-only -q pgvector >"$work/fetch.log" 2>&1); then
		[ -n "$FALLBACK_DSC" ] || { cat "$work/fetch.log" >&2; die "apt-get source pgvector from $SRC_SUITE failed"; }
		log "$SRC_SUITE lists pgvector $(apt-cache "${aptopts[@]}" showsrc pgvector 2>/dev/null | sed -n 's/^Version: //p' | head -n1) but $uri lacks its files; fetching the pinned $FALLBACK_DSC from the pool"
		rm -f "$work"/pgvector_*
		fetch_pool_source "$uri" "$work" "$FALLBACK_DSC" "$FALLBACK_SHA256"
	fi
	local dsc
	dsc=$(ls "$work"/pgvector_*.dsc | head -n1)
	[ -n "$dsc" ] || die "no pgvector .dsc downloaded"
	local old
	old=$(installed_pgvector || true)
	(cd "$work" && dpkg-source --no-check -x "$dsc" src >/dev/null) || die "dpkg-source -x $dsc failed"
	log "building $(basename "$dsc" .dsc) against PostgreSQL $PG_MAJOR"
	local start
	start=$(date +%s)
	make -C "$work/src" -s PG_CONFIG="$pg_bin/pg_config" OPTFLAGS="" >/dev/null 2>"$work/build.log" \
		|| { cat "$work/build.log" >&2; die "pgvector build failed"; }
	$SUDO make -C "$work/src" -s PG_CONFIG="$pg_bin/pg_config" install >/dev/null \
		|| die "pgvector install failed"
	rm -rf "$work"
	local v
	v=$(installed_pgvector) || die "pgvector install left no $pg_sharedir/extension/vector.control"
	version_ge "$v" "$PGVECTOR_MIN" \
		|| die "$SRC_SUITE ships pgvector $v, older than $PGVECTOR_MIN: set VECTORHEAL_PGVECTOR_SUITE to a suite with a newer one, or VECTORHEAL_PGVECTOR_MIN"
	if [ -n "$old" ]; then
		log "pgvector $old upgraded to $v in $(($(date +%s) - start))s (existing databases move with ALTER EXTENSION vector UPDATE)"
	else
		log "pgvector $v installed in $(($(date +%s) - start))s"
	fi
}

# fetch_pool_source URI DIR DSC SHA256 downloads a source package from the archive's pool with
# apt's own downloader: the .dsc checked against SHA256, each file it names against the .dsc's
# checksum.
fetch_pool_source() {
	local uri=$1 dir=$2 dsc=$3 sum=$4
	local pkg=${dsc%%_*}
	local pool=${uri%/}/pool/main/${pkg:0:1}/$pkg
	local helper=(/usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file)
	"${helper[@]}" "$pool/$dsc" "$dir/$dsc" "SHA256:$sum" >/dev/null 2>&1 \
		|| die "cannot fetch $pool/$dsc with SHA-256 $sum"
	local h size f
	while read -r h size f; do
		"${helper[@]}" "$pool/$f" "$dir/$f" "SHA256:$h" >/dev/null 2>&1 || die "cannot fetch $pool/$f with SHA-256 $h"
	done < <(sed -n '/^Checksums-Sha256:/,/^[^ ]/{/^ /p}' "$dir/$dsc")
}

# check_go makes sure a Go toolchain that can build vectorheal is on the PATH and sets GO to
# it. Go 1.21 or newer is enough: it fetches the release go.mod asks for through the module
# proxy by itself.
GO=go
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
			GO=$(command -v go) || die "golang-go installed but no go on the PATH"
			return
		fi
		die "no Go toolchain found and this release's golang-go is older than 1.21: install Go 1.21 or newer (go.dev/dl) and put it on the PATH"
	fi
	local v
	v=$("$gobin" env GOVERSION 2>/dev/null | sed 's/^go//')
	[ -n "$v" ] && version_ge "$v" 1.21 || die "$gobin is Go ${v:-of unknown version}; Go 1.21 or newer is needed"
	GO=$gobin
	case ":$PATH:" in *":$(dirname "$gobin"):"*) ;; *) log "note: put $(dirname "$gobin") on your PATH for make" ;; esac
}

# current_stack lists the current stack's binaries with the Go module and version each is
# built from.
current_stack() {
	echo "prometheus github.com/prometheus/prometheus $PROMETHEUS_CURRENT"
	echo "promtool github.com/prometheus/prometheus $PROMETHEUS_CURRENT"
	echo "alertmanager github.com/prometheus/alertmanager $ALERTMANAGER_CURRENT"
	echo "amtool github.com/prometheus/alertmanager $ALERTMANAGER_CURRENT"
}

# built_version BIN prints the version of the module BIN was built from ("" if there is no
# such binary): Go records it in every binary, so checking needs no run of the binary.
built_version() {
	[ -x "$1" ] || return 0
	"$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

# stale_stack prints the current stack's binaries that are missing or of another version.
stale_stack() {
	local name mod want
	while read -r name mod want; do
		[ "$(built_version "$STACK_DIR/bin/$name")" = "$want" ] || echo "$name"
	done < <(current_stack)
}

# stack_release turns a module version into its release: Prometheus's v0.316.0 is 3.16.0,
# Alertmanager's v0.31.1 is 0.31.1.
stack_release() {
	case "$1" in
	v0.3[0-9][0-9].*)
		local v=${1#v0.3}
		echo "3.$((10#${v%%.*})).${v#*.}"
		;;
	*) echo "${1#v}" ;;
	esac
}

install_stack() {
	local stale
	stale=" $(stale_stack | tr '\n' ' ')"
	[ -n "${stale// /}" ] || return 0
	$SUDO mkdir -p "$STACK_DIR/bin"
	local name mod want start gobin
	while read -r name mod want; do
		case "$stale" in *" $name "*) ;; *) continue ;; esac
		local pkg=$mod/cmd/$name@$want
		log "building $name $(stack_release "$want") into $STACK_DIR/bin (go install $pkg; takes minutes of CPU)"
		start=$(date +%s)
		# Built as the calling user, from / with GOWORK=off so that this repository's go.mod
		# plays no part, then installed. The version stamped in is what --version prints.
		gobin=$(mktemp -d)
		(cd / && GOWORK=off GOFLAGS=-buildvcs=false GOBIN="$gobin" \
			"$GO" install -ldflags "-X github.com/prometheus/common/version.Version=$(stack_release "$want")" "$pkg") \
			|| { rm -rf "$gobin"; die "go install $pkg failed"; }
		$SUDO install -m 0755 "$gobin/$name" "$STACK_DIR/bin/$name" || die "installing $name into $STACK_DIR/bin failed"
		rm -rf "$gobin"
		[ "$(built_version "$STACK_DIR/bin/$name")" = "$want" ] || die "$STACK_DIR/bin/$name is not built from $want"
		log "$name $(stack_release "$want") built in $(($(date +%s) - start))s"
	done < <(current_stack)
}

main() {
	local missing stale
	detect_platform
	if [ "${1:-}" = "--detect" ]; then
		# A dry check: what this system would get, nothing installed.
		echo "system: $OS_NAME"
		echo "packages: ${PACKAGES[*]}"
		echo "pgvector: built from the $SRC_SUITE source package, at least $PGVECTOR_MIN"
		exit 0
	fi
	check_go
	missing=$(missing_packages | tr -d '\n')
	stale=$(stale_stack | tr -d '\n')
	if [ -z "$missing" ] && [ -z "$stale" ] && ! need_pgvector; then
		log "all dependencies present (PostgreSQL $PG_MAJOR, pgvector $(installed_pgvector), the distribution's Prometheus and Alertmanager, Prometheus $(stack_release "$PROMETHEUS_CURRENT") and Alertmanager $(stack_release "$ALERTMANAGER_CURRENT") in $STACK_DIR/bin)"
		exit 0
	fi
	install_packages
	build_pgvector
	install_stack
	for b in "$pg_bin/initdb" "$pg_bin/postgres" /usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/amtool \
		"$STACK_DIR/bin/prometheus" "$STACK_DIR/bin/promtool" "$STACK_DIR/bin/alertmanager" "$STACK_DIR/bin/amtool"; do
		[ -x "$b" ] || die "$b missing after install"
	done
	log "done"
}

main "$@"
