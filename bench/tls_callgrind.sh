#!/usr/bin/env bash
# tls_callgrind.sh — the broker's user-space instructions (valgrind callgrind: reproducible
# on a noisy machine) per phase, plaintext against TLS, on one broker with both listeners
# (issue 19). Kernel work (copies in read/write/sendfile, TCP) is not counted: plaintext
# fetches are sendfile(2), so their user-space count is near zero.
#
#   TLS_CPU_BINS=build/kpool N=20000 SZ=1024 PARTS=8 ./bench/tls_callgrind.sh
# Prints "phase instructions"; the callgrind files stay in $OUT (default a temp dir) for
# callgrind_annotate (uncompressed names, so each phase's dump can be read on its own).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BINS=${TLS_CPU_BINS:-$top/build/kpool}
N=${N:-200000}; SZ=${SZ:-1024}; PARTS=${PARTS:-8}; OUT=${OUT:-$(mktemp -d /tmp/kpool-tlscg.XXXXXX)}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/kpool-tlscpu.XXXXXX)
trap 'rm -rf "$W"' EXIT
(
  cd "$W"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.crt -days 2 -subj /CN=bench-ca
  for who in broker client; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" \
      -out "$who.csr" -subj "/CN=bench-$who"
    printf 'subjectAltName=IP:127.0.0.1\n' >"$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile "$who.ext" -out "$who.crt"
  done
) >/dev/null 2>&1
TLS=(--security-protocol ssl --ssl-ca "$W/ca.crt" --ssl-cert "$W/client.crt" --ssl-key "$W/client.key")
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
for bin in $BINS; do
  P=$(port); S=$(port); A=$(port); D="$W/data"
  valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT/cg.%p" "$bin" broker \
    --set "listeners=PLAINTEXT://127.0.0.1:$P,SSL://127.0.0.1:$S" --set "admin.listener=127.0.0.1:$A" \
    --set "log.dirs=$D" --set log.flush.policy=durable --set log.level=warn \
    --set "ssl.ca.location=$W/ca.crt" --set "ssl.certificate.location=$W/broker.crt" \
    --set "ssl.key.location=$W/broker.key" --set ssl.client.auth=required >"$OUT/broker.log" 2>&1 &
  BP=$!
  for i in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$S") 2>/dev/null && break; sleep 0.2; done
  phase() { # name bench-args...
    local name=$1; shift
    callgrind_control -z $BP >/dev/null
    "$bin" bench --json -q --timeout 120 "$@" >/dev/null
    callgrind_control -d "$name" $BP >/dev/null
  }
  phase produce-plain -b "127.0.0.1:$P" --topic p --partitions "$PARTS" --message-size "$SZ" --count "$N" --acks all --idempotence
  phase produce-tls -b "127.0.0.1:$S" --topic t --partitions "$PARTS" --message-size "$SZ" --count "$N" --acks all --idempotence "${TLS[@]}"
  phase consume-plain -b "127.0.0.1:$P" --mode consume --topic p
  phase consume-tls -b "127.0.0.1:$S" --mode consume --topic t "${TLS[@]}"
  kill $BP; wait $BP 2>/dev/null || true
  rm -rf "$D"
  echo "== $bin"
  for f in "$OUT"/cg.$BP.*; do
    echo "$(sed -n 's/^desc: Trigger: Dump (\(.*\))$/\1/p; s/^desc: Trigger: dump \(.*\)$/\1/p' "$f" | head -1) $(sed -n 's/^summary: //p; s/^totals: //p' "$f" | head -1)"
  done
  mkdir -p "$OUT/$(basename "$bin")-$BP" && mv "$OUT"/cg.$BP.* "$OUT/$(basename "$bin")-$BP/"
done
echo "callgrind files in $OUT" >&2
