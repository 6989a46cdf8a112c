# vectorheal — see README.md. Every target that needs services installs what is missing first.
GO          ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# Tests that build the binary run `go` themselves: it must be on their PATH too.
export PATH := $(dir $(GO)):$(PATH)
BIN         ?= bin/vectorheal
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Integration tests start private PostgreSQL/Prometheus/Alertmanager instances; two packages at
# a time keeps a 2-core machine responsive.
TEST_FLAGS  ?= -count=1 -p 2 -timeout 60m

.PHONY: all build image test test-current-stack lint install-deps demo bench bench-scale bench-standby soak bench-fleet clean

all: build

# Build information stamped into the binary (vectorheal --version, vectorheal_build_info on
# /metrics). VERSION is the release, read from the file of that name; the image tag in
# deploy/kubernetes and the Helm chart's appVersion equal it (a test in ./deploy checks).
# Each can be overridden, e.g. by deploy/Dockerfile, which builds outside the git checkout.
VERSION     ?= $(shell cat VERSION)
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH      ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER  ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/prometheus/common/version
# EXTRA_LDFLAGS adds linker flags, e.g. -s -w for a smaller image.
EXTRA_LDFLAGS ?=
# A static binary, as the image ships: without the C library and its loader mapped, each
# process has about 1.5 MiB less RSS and one thread less. CGO_ENABLED=1 links the C library,
# e.g. to resolve host names through NSS modules (mDNS, LDAP) that Go's resolver does not read.
CGO_ENABLED ?= 0
LDFLAGS     := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE) $(EXTRA_LDFLAGS)
IMAGE       ?= ghcr.io/vectorheal/vectorheal

build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vectorheal

# The container image, tagged with VERSION (the tag deploy/kubernetes and the chart pin).
image:
	docker build -f deploy/Dockerfile --build-arg REVISION=$(REVISION) --build-arg BRANCH=$(BRANCH) \
		-t $(IMAGE):$(VERSION) .

install-deps:
	./scripts/install-deps.sh

# Two Prometheus stacks: the distribution's (Debian 12: Prometheus 2.42, Alertmanager 0.25) and
# a current one (Prometheus 3, a current Alertmanager) that scripts/install-deps.sh builds into
# STACK_DIR/bin. The whole suite runs once, on the distribution's stack; then the packages whose
# tests run promtool, Prometheus, amtool or Alertmanager and whose outcome depends on their
# version run again on the current one: the rules and their promtool tests (./rules: range
# windows, PromQL semantics), the deploy configs (./deploy/...: promtool and amtool checks), the
# Alertmanager receiver (./webhook: payloads as Alertmanager sends them), the end-to-end loop
# (./internal/e2e), the launcher both stacks start through (./internal/testenv) and the API
# that reads silences and held alerts from Alertmanager's v2 API (./internal/api). The engine
# and CLI tests use that same API through the same client and run once, as does the exporter,
# which only runs `promtool check metrics`: the repair tests are the slow part of the suite.
STACK_DIR   ?= /opt/vectorheal/stack-current
export VECTORHEAL_STACK_DIR := $(STACK_DIR)
STACK_PKGS  ?= ./rules/... ./deploy/... ./webhook/... ./internal/e2e/... ./internal/testenv/... ./internal/api/...
CURRENT_STACK_ENV = VECTORHEAL_PROMETHEUS=$(STACK_DIR)/bin/prometheus VECTORHEAL_PROMTOOL=$(STACK_DIR)/bin/promtool \
	VECTORHEAL_ALERTMANAGER=$(STACK_DIR)/bin/alertmanager VECTORHEAL_AMTOOL=$(STACK_DIR)/bin/amtool

test: install-deps
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
	@echo "== again on the current stack in $(STACK_DIR)/bin: $(STACK_PKGS)"
	$(CURRENT_STACK_ENV) $(GO) test $(TEST_FLAGS) $(STACK_PKGS)

# Only the second half of `make test`: the version-sensitive packages on the current stack.
test-current-stack: install-deps
	$(CURRENT_STACK_ENV) $(GO) test $(TEST_FLAGS) $(STACK_PKGS)

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "not gofmt-clean: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin

# deploy/kubernetes/prometheusrule.yaml and the Helm chart's files/rule-groups.yaml are generated
# from rules/*.yml (the chart's files/runbook.yml is deploy/runbook.yml); a test in ./deploy
# fails when a checked-in file is stale. GRAFANA_URL is the Grafana the alerts' dashboard links
# point at in prometheusrule.yaml (default: the one it was last generated for, at first
# http://grafana:3000); the chart takes it as the value grafana.url.
GRAFANA_URL ?=
.PHONY: deploy-rules
deploy-rules:
	$(GO) test -count=1 -run 'TestPrometheusRuleIsCurrent$$' ./deploy -update $(if $(GRAFANA_URL),-grafana-url=$(GRAFANA_URL))

# A private PostgreSQL + pgvector, Prometheus, Alertmanager and vectorheal in a temporary
# directory; faults are injected and healed live. VECTORHEAL_DEMO_DSN uses your database instead.
# DEMO_FLAGS passes flags, e.g. DEMO_FLAGS=--exit (see go run ./cmd/vectorheal-demo -h).
DEMO_FLAGS  ?=
demo: install-deps build
	$(GO) run ./cmd/vectorheal-demo --vectorheal $(BIN) $(DEMO_FLAGS)

# The HNSW structure analysis at production scale (docs/BENCHMARKS.md): the first run builds
# 1,000,000 32-d vectors with their HNSW index in a private PostgreSQL (20 minutes on 2 busy
# cores with BENCH_SCALE_FLAGS=-build-workers=2) and keeps it in a directory under the system's
# temporary directory for the next runs. BENCH_SCALE_FLAGS passes flags, e.g.
# BENCH_SCALE_FLAGS=-max-pages-per-second=20000 (see go run ./cmd/vectorheal-bench -h).
# Not part of `make test`.
BENCH_SCALE_FLAGS ?=
bench-scale: install-deps
	$(GO) run ./cmd/vectorheal-bench $(BENCH_SCALE_FLAGS)

# Reading from a hot standby (docs/BENCHMARKS.md): the application's p99 on the primary with
# the exporter's scan reading a streaming replica, and, pair for pair in the same run, with the
# scan reading the primary under the adaptive budget, and control pairs without a scan; with at
# least 2 CPUs, primary and standby are pinned to halves of them. Builds 200,000 32-d vectors
# the first time (about a minute), then 10 pairs of 20 s phases for each, about 22 minutes.
# BENCH_STANDBY_FLAGS passes more flags (see go run ./cmd/vectorheal-bench -h). Not part of
# `make test`.
BENCH_STANDBY_FLAGS ?=
bench-standby: install-deps
	$(GO) run ./cmd/vectorheal-bench -rows 200000 -dim 32 -build-workers 2 -skip-analysis -pairs 10 -phase 20s \
		-standby -max-pages-per-second 5000 -adaptive -adjust-interval 1s -control $(BENCH_STANDBY_FLAGS)

# The soak benchmark (docs/BENCHMARKS.md): one private PostgreSQL with two identical databases
# under the same seeded churn, one tended by vectorheal with the shipped rules and runbook
# (timings shortened), one by autovacuum alone; 3 minutes quiet, then 30 minutes of churn,
# about 40 minutes in all. Results go to soak-out/. SOAK_FLAGS passes flags, e.g.
# SOAK_FLAGS='-duration 5m -quiet 1m -rows 20000' for a short run or SOAK_FLAGS=-write-docs to
# update docs/BENCHMARKS.md and docs/soak.svg (see go run ./cmd/vectorheal-soak -h).
# Not part of `make test`.
SOAK_FLAGS ?=
soak: install-deps build
	$(GO) run ./cmd/vectorheal-soak -vectorheal $(BIN) $(SOAK_FLAGS)

# The fleet benchmark (docs/BENCHMARKS.md): 1,000 vector indexes over 50 databases of one
# private PostgreSQL (built in about a minute on 2 cores), measured for 12 minutes by 3 shards
# of vectorheal serve and, at the same time, by one unsharded process (checks every 2
# minutes); then one shard is killed and restarted. FLEET_FLAGS passes flags, e.g.
# FLEET_FLAGS='-databases 5 -indexes 60 -large 2 -large-min 5000 -large-max 10000 -interval 20s
# -poll 2s -duration 1m' for a short run or FLEET_FLAGS=-write-docs to update docs/BENCHMARKS.md
# (see go run ./cmd/vectorheal-fleet -h). Not part of `make test`.
FLEET_FLAGS ?=
bench-fleet: install-deps build
	$(GO) run ./cmd/vectorheal-fleet -vectorheal $(BIN) $(FLEET_FLAGS)
