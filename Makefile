# taskfn — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
BENCHTIME ?= 2s

.PHONY: build test dev lint bench bench-coldstart fmt

## build: compile every function into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./functions/...

## test: the whole suite against the real PostgreSQL (and Redis), with the race detector
test: lint
	$(GO) test -race -count=1 $(PKGS)
	$(MAKE) test-memory
	$(MAKE) test-pgbouncer
	$(MAKE) validate

## test-memory: the exports' memory bounds (1,000,000 tasks: CSV and XLSX each under 64 MiB RSS), which the race
## detector's shadow memory hides from the -race pass, checked without it
.PHONY: test-memory
test-memory:
	set -o pipefail; $(GO) test -count=1 -run '^TestExportMemory$$' -v ./shared/report/ | grep -E 'export of|inserted|^(---|ok|FAIL|PASS)'

## dev: every function on one address (DEV_ADDR, default 127.0.0.1:8080), dev issuer included.
## The first build compiles some 450 packages (about 90 s on 2 cores): say so rather than sit silent.
dev:
	@echo "make dev: building the dev runner (the first build takes a minute or two; later ones seconds)..."
	@mkdir -p bin && $(GO) build -o bin/dev ./functions/dev
	@echo "make dev: starting on $${DEV_ADDR:-127.0.0.1:8080} (Ctrl-C stops it)"
	bin/dev

## lint: go vet (the fault tests' build tag included), and gofmt must have nothing to change
lint:
	$(GO) vet $(PKGS)
	$(GO) vet -tags faults ./shared/faults/
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: handler and store benchmarks against the real database, and (shared/loadgen) the load
## benchmark of the real function binaries with its ceilings: BENCHMARKS.md. Seeding its table
## of a million tasks the first time takes minutes, hence the timeout.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 30m ./shared/... ./functions/dev

## bench-coldstart: per function, the stripped binary's size, process start to /readyz 200 (p50 and
## max over 20 starts) and RSS once ready, against a migrated database (BENCHMARKS.md, Cold start)
bench-coldstart:
	cd knative/validate && $(GO) test -run '^$$' -bench ColdStart -benchtime 20x -timeout 30m .

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: every fuzz target for FUZZTIME each, one after another (README: Tests and benchmarks).
## Their seed corpora run in make test as ordinary tests. FUZZFLAGS=-parallel=1 on a busy machine.
## A new parser of untrusted input gets its target here: package:Name. A target fails when it
## writes a crasher (testdata/fuzz/<Name>/); go1.26's coordinator may also end a duration run
## with a bare "context deadline exceeded" and no crasher (go.dev/issue/75804), said, not failed.
FUZZTIME  ?= 30s
FUZZFLAGS ?=
FUZZ_TARGETS := \
  ./shared/httpx:FuzzQuery \
  ./shared/httpx:FuzzReadBody \
  ./shared/taskapi:FuzzListQuery \
  ./shared/taskapi:FuzzPrecondition \
  ./shared/task:FuzzDecodeCursor \
  ./shared/task:FuzzPatch \
  ./shared/task:FuzzAppendJSON \
  ./shared/report:FuzzParseRequest \
  ./shared/report:FuzzRequestedID \
  ./shared/report/render:FuzzAppendText \
  ./shared/notify:FuzzDecide \
  ./shared/webhook:FuzzParseInput \
  ./shared/webhook:FuzzTouched \
  ./shared/events:FuzzSinkHandler \
  ./shared/ingest:FuzzParse \
  ./shared/auth:FuzzRequire \
  ./shared/cache:FuzzDecode \
  ./shared/recurrence:FuzzCheck \
  ./shared/digest:FuzzParsePreferences \
  ./shared/field:FuzzParseInput \
  ./shared/field:FuzzApply
.PHONY: fuzz
fuzz:
	@failed=""; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg 2>&1 | tee $$log; \
	  if [ $${PIPESTATUS[0]} -ne 0 ]; then \
	    if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
	      echo "fuzz: $$name: stopped by Go's deadline race (go.dev/issue/75804), no crasher"; \
	    else failed="$$failed $$name"; fi; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (see above; a crasher is written to testdata/fuzz/<Name>/)"; exit 1; fi

.PHONY: validate manifests-sync images

## validate: what ships to a cluster, checked by the real tools (knative/validate, a module of
## its own): manifests strictly decoded and validated as Knative's and Kubernetes' types,
## nginx -t, promtool, and the end-to-end test of the real functions behind the real nginx
validate:
	cd knative/validate && $(GO) vet ./... && $(GO) test -count=1 ./...

## manifests-sync: copy gateway.conf.template and alerts.yml into the manifests that embed them
manifests-sync:
	cd knative/validate && $(GO) test -count=1 -run 'MatchesTemplate|MatchesRuleFile' . -args -update

# images: ko (go install github.com/google/ko@v0.19.1) builds every image the manifests name,
# offline: the base is assembled locally (knative/validate/cmd/kobase) into ko's cache and used
# instead of ko.yaml's, which needs a registry. ko pushes to a registry on loopback that lives for
# the run (cmd/koregistry): its --oci-layout-path writes one index.json from concurrent publishes
# without a lock, which failed CI once. The resolved manifests and an OCI layout of the images
# (copied one at a time by imagecheck) land in $(IMAGES).
KO      ?= ko
KOCACHE ?= $(CURDIR)/.cache/ko
IMAGES  ?= $(CURDIR)/bin/images
KO_DIRS := -f knative/ -f knative/gateway/ -f kafka-sources/

## images: build every function's image for linux/amd64 and linux/arm64 offline, then check
## each exists for both, runs as non-root and is under 20 MB compressed (the pulled size)
images:
	@command -v $(KO) >/dev/null || { echo "ko not found: go install github.com/google/ko@v0.19.1"; exit 1; }
	rm -rf $(IMAGES) && mkdir -p $(IMAGES) $(KOCACHE)
	cd knative/validate && $(GO) build -o $(IMAGES)/ ./cmd/kobase ./cmd/koregistry ./cmd/imagecheck
	base=$$(KOCACHE=$(KOCACHE) $(IMAGES)/kobase) && echo "base: $$base" && \
	  KOCACHE=$(KOCACHE) KO_CONFIG_PATH=ko.yaml KO_DEFAULTBASEIMAGE=$$base \
	  $(IMAGES)/koregistry -blobs $(IMAGES)/registry -- sh -c '$(KO) resolve --sbom=none \
	    --platform=linux/amd64,linux/arm64 $(KO_DIRS) > $(IMAGES)/resolved.yaml && \
	    $(IMAGES)/imagecheck -layout $(IMAGES)/layout $(IMAGES)/resolved.yaml'

## test-pgbouncer: the database-backed tests again, through PgBouncer in transaction pooling mode;
## a PgBouncer it had to start (installing Debian's package if missing) is stopped again after the run
PGBOUNCER_ADDR ?= 127.0.0.1:6432
# functions/dev and functions/migrate are left out: migrations need a session of their own
# (advisory lock), so they connect to PostgreSQL directly, as the migration Job does.
PGBOUNCER_PKGS := ./shared/pg/... ./shared/pgtest/... ./shared/task/... ./shared/taskapi/... ./shared/cache/... \
  ./shared/outbox/... ./shared/notify/... ./shared/people/... ./shared/report/... ./shared/cleanup/... \
  ./shared/project/... ./shared/projectapi/... ./shared/activity/... ./shared/commentapi/... \
  ./shared/field/... ./shared/fieldapi/...
.PHONY: test-pgbouncer
test-pgbouncer:
	TEST_PGBOUNCER_ADDR=$(PGBOUNCER_ADDR) bash .ci/pgbouncer/start
	status=0; TEST_PGBOUNCER_ADDR=$(PGBOUNCER_ADDR) DATABASE_QUERY_EXEC_MODE=exec DATABASE_TRANSACTION_POOLING=true \
	  DATABASE_STATEMENT_TIMEOUT=0 $(GO) test -race -count=1 $(PGBOUNCER_PKGS) || status=$$?; \
	  bash .ci/pgbouncer/stop; exit $$status

## faults: the fault-injection tests (shared/faults, build tag "faults"): PostgreSQL and PgBouncer
## restarted under write load and create-task/update-task killed with SIGKILL mid-write, through
## the real function binaries, each test on a PostgreSQL instance of its own (initdb on a free
## port) and the local Redis. Needs PostgreSQL's server binaries and pgbouncer (.ci/run installs
## them); about 20 s per test after the build. Prints the figures docs/operations.md quotes.
.PHONY: faults
faults:
	$(GO) test -tags faults -count=1 -v -timeout 15m ./shared/faults/
