# syntax=docker/dockerfile:1
# The crowdpack manager image: make docker-build IMG=registry/crowdpack:v1

# Build stage: the same Go as go.mod, never a downloaded toolchain.
FROM golang:1.26 AS builder
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /workspace

# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

# Only the packages the manager is built from.
COPY main.go ./
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/

# A static binary (distroless/static has no libc); -trimpath and -s -w keep
# build paths and debug tables out; the version is stamped into the
# User-Agent sent to WeChat Pay.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/crowdpack/crowdpack/internal/wechatpay.Version=${VERSION}" \
      -o manager .

# Run stage: no shell, no package manager, CA certificates included, runs as
# the unprivileged user nonroot (65532).
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
