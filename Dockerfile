# syntax=docker/dockerfile:1
# The crowdpack manager image: make docker-build IMG=registry/crowdpack VERSION=v0.2.0
# (tags it registry/crowdpack:v0.2.0; `docker run IMAGE --version` prints it).

# Build stage: the same Go as go.mod, never a downloaded toolchain.
FROM golang:1.26 AS builder
ARG VERSION=dev
ARG COMMIT=unknown
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
# build paths and debug tables out; the version and commit are stamped into
# internal/version (--version, crowdpack_build_info, the User-Agent sent to
# WeChat Pay). .git is not in the build context: the Makefile passes COMMIT.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/crowdpack/crowdpack/internal/version.Version=${VERSION} -X github.com/crowdpack/crowdpack/internal/version.Commit=${COMMIT}" \
      -o manager .

# Run stage: no shell, no package manager, CA certificates included, runs as
# the unprivileged user nonroot (65532).
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
# The recommended OCI labels, so registries and scanners show the version.
LABEL org.opencontainers.image.title="crowdpack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/crowdpack/crowdpack"
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
