#!/usr/bin/env bash
# tls_cpu.sh — broker CPU per MB, plaintext against TLS, for one or more kpool binaries
# (issue 19). CPU time (user + system from /proc, 10 ms ticks) is far less sensitive than
# msg/s to other programs on a shared machine.
#
# For each repetition, binary and protocol: a fresh durable broker, N messages produced
# (acks=all, idempotence), then read back by a fresh consumer; one line per run with the
# broker's CPU seconds for each phase, CPU ms per MB (the broker's, and the client's from
# kpool bench's cpu_s), and msg/s. At the end, per binary, the
# medians over the repetitions and TLS / plaintext (msg/s and CPU per MB) of the same run.
# CPU is the sum of the broker's threads' run time from /proc/PID/task/*/schedstat
# (nanoseconds; the broker's threads live as long as it does), or user + system ticks
# (10 ms) where schedstat is missing.
#
#   TLS_CPU_BINS="/tmp/kpool-old build/kpool" SZ=1024 N=200000 PARTS=8 REPS=5 ./bench/tls_cpu.sh
#
# PIN=1 gives each end a core of its own (taskset: the broker on CPU 1, the client on CPU 0),
# so a run shows which end is the bound: the one whose CPU time is close to the wall time.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BINS=${TLS_CPU_BINS:-$top/build/kpool}
N=${N:-200000}; SZ=${SZ:-1024}; PARTS=${PARTS:-8}; REPS=${REPS:-3}
BPIN=(); CPIN=()
if [ "${PIN:-0}" = 1 ]; then BPIN=(taskset -c 1); CPIN=(taskset -c 0); fi
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
cpu() {
  if [ -r "/proc/$1/schedstat" ]; then
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ ns += $1 } END { printf "%.4f", ns / 1e9 }'
  else
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
  fi
}
for ((rep = 1; rep <= REPS; rep++)); do
  for bin in $BINS; do
    for proto in plain tls; do
      P=$(port); A=$(port); D="$W/data-$rep"
      if [ $proto = tls ]; then L=SSL; X=("${TLS[@]}"); else L=PLAINTEXT; X=(); fi
      "${BPIN[@]}" "$bin" broker --set "listeners=$L://127.0.0.1:$P" --set "admin.listener=127.0.0.1:$A" \
        --set "log.dirs=$D" --set log.flush.policy=durable --set log.level=warn \
        --set "ssl.ca.location=$W/ca.crt" --set "ssl.certificate.location=$W/broker.crt" \
        --set "ssl.key.location=$W/broker.key" --set ssl.client.auth=required >/dev/null 2>&1 &
      BP=$!
      for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
      c0=$(cpu $BP)
      "${CPIN[@]}" "$bin" bench -b "127.0.0.1:$P" --topic t --partitions "$PARTS" --message-size "$SZ" \
        --count "$N" --acks all --idempotence "${X[@]}" --json -q >"$W/p.json"
      c1=$(cpu $BP)
      "${CPIN[@]}" "$bin" bench -b "127.0.0.1:$P" --mode consume --topic t "${X[@]}" --json -q >"$W/c.json"
      c2=$(cpu $BP)
      kill $BP; wait $BP 2>/dev/null || true
      rm -rf "$D"
      python3 - "$bin" "$proto" "$rep" "$c0" "$c1" "$c2" "$W/p.json" "$W/c.json" <<'PY'
import json, sys
bin_, proto, rep, c0, c1, c2, pj, cj = sys.argv[1:]
pj, cj = json.load(open(pj)), json.load(open(cj))
p, c = pj["produce"], cj["consume"]
mb = p["bytes"] / 2**20
pc, cc = float(c1) - float(c0), float(c2) - float(c1)
print(json.dumps({"bin": bin_, "proto": proto, "rep": int(rep), "mb": round(mb, 1),
                  "produce_cpu_s": round(pc, 3), "produce_cpu_ms_per_mb": round(1000 * pc / mb, 3),
                  "consume_cpu_s": round(cc, 3), "consume_cpu_ms_per_mb": round(1000 * cc / mb, 3),
                  "produce_client_cpu_ms_per_mb": round(1000 * pj["cpu_s"] / mb, 3),
                  "consume_client_cpu_ms_per_mb": round(1000 * cj["cpu_s"] / mb, 3),
                  # cores busy over the workload's time (the client's cpu_s includes its setup)
                  "produce_broker_busy": round(pc / p["seconds"], 2),
                  "produce_client_busy": round(pj["cpu_s"] / p["seconds"], 2),
                  "consume_broker_busy": round(cc / c["seconds"], 2),
                  "consume_client_busy": round(cj["cpu_s"] / c["seconds"], 2),
                  "produce_msg_s": round(p["msg_per_s"]), "consume_msg_s": round(c["msg_per_s"])}))
PY
    done
  done
done | tee "$W/runs.jsonl"
python3 - "$W/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| binary | side | plaintext msg/s | TLS msg/s | TLS / plaintext | plaintext CPU ms/MB | TLS CPU ms/MB | TLS / plaintext CPU | client plaintext ms/MB | client TLS ms/MB | cores busy plaintext: broker, client | cores busy TLS: broker, client | n |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for b in dict.fromkeys(r["bin"] for r in runs):
    for side in ("produce", "consume"):
        def med(proto, k):
            return statistics.median(r[side + k] for r in runs if r["bin"] == b and r["proto"] == proto)
        n = sum(1 for r in runs if r["bin"] == b and r["proto"] == "tls")
        pm, tm = med("plain", "_msg_s"), med("tls", "_msg_s")
        pc, tc = med("plain", "_cpu_ms_per_mb"), med("tls", "_cpu_ms_per_mb")
        pcl, tcl = med("plain", "_client_cpu_ms_per_mb"), med("tls", "_client_cpu_ms_per_mb")
        busy = lambda proto: "%.2f, %.2f" % (med(proto, "_broker_busy"), med(proto, "_client_busy"))
        print("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %d |" % (
            b, side, pm, tm, tm / pm, pc, tc, tc / pc if pc else float("nan"), pcl, tcl,
            busy("plain"), busy("tls"), n))
PY
