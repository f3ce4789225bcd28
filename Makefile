SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

# Build tools are pinned in tools/go.mod (tool directives) and kept out of
# the product's dependency graph.
BUF := go tool -modfile=tools/go.mod buf
BENCHTIME ?= 1s

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "%-16s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## Run the end-to-end demo on the embedded default (the main job)
	go run ./cmd/abmesh demo

.PHONY: build
build: ## Build abmeshd and abmesh into bin/
	go build -o bin/ ./cmd/...

.PHONY: test
test: ## Vet and run every test
	go vet ./...
	go test -count=1 -timeout 30m ./...

.PHONY: race
race: ## Run the tests with the race detector
	go test -race -count=1 -timeout 40m ./...

.PHONY: bench
bench: ## Run the Go benchmarks (BENCHTIME=1s)
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Every fuzz target, as package:Function (go test -fuzz runs one at a time).
FUZZ_TARGETS := ./tracing/otlp:FuzzDecodeProto ./tracing/otlp:FuzzJSONRoundTrip ./tracing/files:FuzzDecode \
	./tracing:FuzzSpanToObservation ./assign:FuzzBucket ./assign:FuzzMetricRoundTrip ./analysis:FuzzReadCSV \
	./internal/adapter/manifest:FuzzParse ./internal/auth:FuzzParseRules
FUZZTIME ?= 100000x
# FUZZ selects some of them: make fuzz FUZZ=./assign:FuzzBucket
FUZZ ?= $(FUZZ_TARGETS)

.PHONY: fuzz
fuzz: ## Run every fuzzer from its seed corpus for FUZZTIME each (default 100000x: 100k inputs; new inputs minimized in 500 runs; not part of make test)
	@n=$$(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | wc -l); \
	if [[ $$n -ne $(words $(FUZZ_TARGETS)) ]]; then echo "FUZZ_TARGETS lists $(words $(FUZZ_TARGETS)) fuzzers, the code has $$n: update the Makefile" >&2; exit 1; fi
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg)"; \
		go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 500x -timeout 60m "$$pkg"; done

.PHONY: fuzz-seeds
fuzz-seeds: ## Write the fuzzers' seed corpora (testdata/fuzz) from captured real requests
	ABMESH_WRITE_FUZZ_SEEDS=1 go test -count=1 -run '^TestWriteFuzzSeeds$$' -v ./internal/tool/demo

.PHONY: bench-ingest
bench-ingest: ## abmeshd and Jaeger's all-in-one side by side under the same OTLP load (ROUNDS, DURATION, RATE; builds Jaeger)
	.ci/bench-ingest

.PHONY: bench-scaling
bench-scaling: ## One replica on PostgreSQL at saturation and a 1M-unit flush: the figures of docs/scaling.md (ROUNDS, DURATION, UNITS, FLUSH_UNITS; ~4 min)
	.ci/bench-scaling

.PHONY: reference
reference: ## Regenerate analysis/testdata's R references (needs Rscript with car, sandwich, pwr)
	@Rscript -e 'for (p in c("car", "sandwich", "pwr")) if (!requireNamespace(p, quietly = TRUE)) stop("R package ", p, " is missing: apt-get install -y r-base-core r-cran-car r-cran-sandwich r-cran-pwr")'
	cd analysis/testdata && for f in gen/*.R; do echo "Rscript $$f"; Rscript "$$f"; done

.PHONY: generate
generate: ## Regenerate Go code from proto/ with buf
	$(BUF) generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail if generated code drifts from proto/
	@if [[ -n "$$(git status --porcelain -- proto)" ]]; then \
		echo "generated code is out of date; run make generate" >&2; git status --porcelain -- proto >&2; exit 1; fi

.PHONY: lint
lint: ## Lint the protos (buf) and the Go code (go vet, gofmt)
	$(BUF) lint
	go vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [[ -n "$$out" ]]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi

.PHONY: breaking
breaking: ## Check the protos for breaking changes against main
	$(BUF) breaking --against '.git#branch=main'
