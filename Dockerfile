# syntax=docker/dockerfile:1
# One function's image without ko, the same as ko builds it: a static
# binary (CGO_ENABLED=0, -trimpath, -s -w, version stamped) on the same
# distroless base, run as nonroot 65532, CA certificates included.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg FUNCTION=get-task --build-arg VERSION=$(git rev-parse --short HEAD) \
#     -t registry.example.com/taskfn/get-task .
#
# FUNCTION is a directory under functions/ (not dev: the local runner is
# never deployed). The builder runs on the build machine's platform and
# cross-compiles, so multi-platform builds need no emulation.

# Override with a digest to pin the toolchain image too.
ARG GO_IMAGE=golang:1.26-bookworm

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG FUNCTION
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
RUN test -n "$FUNCTION" || { echo "set --build-arg FUNCTION=<directory under functions/>" >&2; exit 1; }; \
    test "$FUNCTION" != dev || { echo "functions/dev is the local runner, not a deployable function" >&2; exit 1; }
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY functions/ functions/
COPY shared/ shared/
COPY migrations/ migrations/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    test -f "functions/$FUNCTION/main.go" || { echo "no such function: functions/$FUNCTION" >&2; exit 1; }; \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags="-s -w -X github.com/taskfn/taskfn/shared/version.Version=${VERSION}" \
      -o /out/function "./functions/$FUNCTION"

# Same reference as ko.yaml's defaultBaseImage (knative/validate checks it).
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/function /ko-app/function
USER 65532:65532
ENTRYPOINT ["/ko-app/function"]
