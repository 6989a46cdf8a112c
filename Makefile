# vectorheal — see README.md. Every target that needs services installs what is missing first.
GO          ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# Tests that build the binary run `go` themselves: it must be on their PATH too.
export PATH := $(dir $(GO)):$(PATH)
BIN         ?= bin/vectorheal
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Integration tests start private PostgreSQL/Prometheus/Alertmanager instances; two packages at
# a time keeps a 2-core machine responsive.
TEST_FLAGS  ?= -count=1 -p 2 -timeout 60m

.PHONY: all build test lint install-deps demo bench bench-scale clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vectorheal

install-deps:
	./scripts/install-deps.sh

test: install-deps
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "not gofmt-clean: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin

# deploy/kubernetes/prometheusrule.yaml is generated from rules/*.yml; a test in ./deploy fails
# when the checked-in file is stale.
.PHONY: deploy-rules
deploy-rules:
	$(GO) test -count=1 -run 'TestPrometheusRuleIsCurrent$$' ./deploy -update

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
