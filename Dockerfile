# syntax=docker/dockerfile:1
#
# tokend's image: a static binary on distroless static, running as nonroot.
# The binary is built by hack/build.sh, the same script CI runs through
# hack/check-binary.sh, so the image and CI build it identically.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short=12 HEAD) -t tokend .
#
# Multi-platform builds cross-compile on the build host (--platform with
# buildx); no emulation is needed.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
ENV GOCACHE=/go/cache/build
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION COMMIT
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/go/cache/build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION COMMIT=$COMMIT OUT=/out/tokend hack/build.sh

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokend /tokend
USER 65532:65532
ENTRYPOINT ["/tokend"]
CMD ["run"]
