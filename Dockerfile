# syntax=docker/dockerfile:1.7
#
# One image with every wallet binary; Compose and Kubernetes pick the program
# with the container's command. Build: docker build -t wallet:local .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep modules and build results between builds; only the
# modules the binaries import are fetched, not the test and tool ones.
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/gateway ./cmd/worker ./cmd/walletd ./cmd/migrate
# walletd's embedded JetStream store needs a writable directory owned by the
# unprivileged user; the runtime image has no shell to create it.
RUN mkdir -p /data/jetstream

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /data /data
ENV WALLET_NATS_STORE_DIR=/data/jetstream
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/gateway"]
