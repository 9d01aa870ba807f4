# taskfn — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
BENCHTIME ?= 2s

.PHONY: build test dev lint bench fmt

## build: compile every function into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./functions/...

## test: the whole suite against the real PostgreSQL (and Redis), with the race detector
test: lint
	$(GO) test -race -count=1 $(PKGS)

## dev: every function on one address (DEV_ADDR, default 127.0.0.1:8080), dev issuer included
dev:
	$(GO) run ./functions/dev

## lint: go vet, and gofmt must have nothing to change
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: handler and store benchmarks against the real database
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./shared/...

fmt:
	gofmt -w $$(git ls-files '*.go')
