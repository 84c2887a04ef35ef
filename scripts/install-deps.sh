#!/usr/bin/env bash
# Installs every Debian package kpool's build and tests need, and the npm packages of the
# JavaScript client tests. Idempotent: only what is missing is installed, so a second run
# costs a few dpkg-query calls and no network.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config python3 clang llvm libclang-rt-14-dev clang-format
  libssl-dev librdkafka-dev libjansson-dev libyaml-dev libsqlite3-dev libmicrohttpd-dev libpcre2-dev
  libcurl4-openssl-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev libavro-dev libcmocka-dev
  # tests: real Kafka clients and their compression codecs
  kcat python3-pytest python3-confluent-kafka python3-kafka python3-lz4 python3-snappy
  python3-zstandard python3-requests python3-pytest-timeout openssl curl procps
  # tests: Go clients (Sarama, kafka-go), built in GOPATH mode from Debian's sources
  golang-go golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev
  # kafka-python: lz4 in message format v0 (the pre-0.10 frame checksum needs xxhash)
  python3-xxhash
  # replicated pools: cluster metadata in etcd (docs/replication.md)
  etcd-server etcd-client
  # bench/peers.sh: the peers kpool is compared with
  redis-server nats-server libnats-dev
)
# Node.js: the machine may carry its own build (nodesource bundles npm, and conflicts with
# Debian's npm package), so Debian's is installed only when no npm is on PATH.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q || true
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# JavaScript client (kafkajs) for the integration tests, pinned by package-lock.json.
top=$(cd "$(dirname "$0")/.." && pwd)
js="$top/tests/integration/js"
if [ -f "$js/package.json" ]; then
  # the marker holds the lock file's hash, so a changed lock file is installed again
  want=$(sha256sum "$js/package-lock.json" 2>/dev/null | cut -d' ' -f1)
  have=$(cat "$js/node_modules/.kpool-installed" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "install-deps: npm ci in tests/integration/js"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error && echo "$want" > node_modules/.kpool-installed)
  fi
fi
