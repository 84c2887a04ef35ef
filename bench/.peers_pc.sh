#!/usr/bin/env bash
# peers.sh — the same workloads, side by side in one run, against kpool and its peers; prints
# medians and kpool/peer ratios (SPEC §10).
#
# Targets (PEERS_TARGETS, space separated, in this order by default):
#   kpool-durable    build/kpool broker, log.flush.policy=durable (acks=all answered after fsync)
#   kpool-pagecache  build/kpool broker, log.flush.policy=pagecache (Kafka's default behaviour)
#   kpool-rf3        a replicated pool: etcd and 3 kpool brokers (durable, as kpool-durable) on
#                    this machine, topics with replication 3 and min.insync.replicas=2,
#                    acks=all: the cost of replication next to kpool-durable (its ratio is
#                    printed under the table)
#   kpool-tls        kpool-durable behind an SSL:// listener with client certificates required
#                    (certificates made here with openssl; the bench client presents one)
#   mock             librdkafka's in-process mock cluster (`kpool bench --mock 1`): the same
#                    client against a server that keeps data in memory only
#   redis-always     Redis Streams (Debian redis-server), appendonly yes, appendfsync always
#   redis-no         Redis Streams, appendonly yes, appendfsync no (page cache)
#   nats-js          NATS JetStream (Debian nats-server 2.9, file storage; it fsyncs on a timer,
#                    not per ack, so compare it with kpool-pagecache). Debian has no NATS
#                    benchmark tool (natscli is not packaged): bench/nats_js.c, built here
#                    against Debian's libnats-dev, is the client.
#
# Workloads (PEERS_WORKLOADS, SIZE:PARTITIONS): 1 KiB and 100 B messages on 1 and 8
# partitions, acks=all with idempotence, as fast as possible; then the same messages read back
# by a fresh consumer from the log ("from disk": the page cache is dropped first when
# /proc/sys/vm/drop_caches is writable, see PEERS_COLD). Plus one fixed-rate latency workload
# (PEERS_RATE msgs/s of 1 KiB on 1 partition, linger.ms=0, producer and consumer at once):
# send->ack and end-to-end latency without saturation.
#
# Each workload runs PEERS_REPS times (default 3), targets interleaved within a repetition so
# machine noise hits them alike; the table shows medians. Runtime is a few minutes by default;
# PEERS_SCALE multiplies the message counts (0.1 for a smoke run, 5 for steadier figures).
#
#   PEERS_SCALE=1 PEERS_REPS=3 ./bench/peers.sh          # what `make bench` runs
#   PEERS_TARGETS="kpool-durable mock" PEERS_WORKLOADS="1024:1" ./bench/peers.sh
#
# Raw results (one JSON object per run) go to $PEERS_OUT/results.jsonl (default a temp dir,
# printed at the end); the table is also written to $PEERS_OUT/table.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
KPOOL=${KPOOL_BIN:-$top/build/kpool}
SCALE=${PEERS_SCALE:-1}
REPS=${PEERS_REPS:-3}
TARGETS=${PEERS_TARGETS:-"kpool-durable kpool-rf3 kpool-pagecache kpool-tls mock redis-always redis-no nats-js"}
WORKLOADS=${PEERS_WORKLOADS:-"1024:1 1024:8 100:1 100:8"}
RATE=${PEERS_RATE:-5000}
LATENCY=${PEERS_LATENCY:-1} # 0: skip the fixed-rate latency workload
COLD=${PEERS_COLD:-auto}
OUT=${PEERS_OUT:-$(mktemp -d /tmp/kpool-peers.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
WORK=$(mktemp -d /tmp/kpool-peers-work.XXXXXX)

# Message counts per run: about 200 MB of 1 KiB messages, 60 MB of 100 B messages.
count_for() { python3 -c "print(max(1000, int(float('$SCALE') * ($1 == 100 and 600000 or 200000))))"; }
# The mock cluster keeps only ~5 MiB per partition (older data is dropped), so its read-back
# run is capped to ~4 MiB of payload per partition.
mock_consume_count() {
  python3 -c "print(min($(count_for "$1"), $2 * (4 << 20) // ($1 + 70)))"
}
LAT_SECONDS=$(python3 -c "print(max(1.0, 5 * float('$SCALE')))")

[ -x "$KPOOL" ] || { echo "peers.sh: $KPOOL not built (make build)" >&2; exit 2; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

drop_caches() {
  [ "$COLD" = 0 ] && return 0
  sync
  if ! echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; then
    [ "$COLD" = 1 ] && { echo "peers.sh: PEERS_COLD=1 but cannot drop caches" >&2; exit 2; }
    COLD=0
  fi
}

# A CA, a broker certificate (127.0.0.1) and a client certificate for kpool-tls, in $WORK/tls.
make_tls() {
  local d="$WORK/tls"
  [ -f "$d/client.crt" ] && return 0
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
      -out ca.crt -days 2 -subj /CN=bench-ca
    for who in broker client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" \
        -out "$who.csr" -subj "/CN=bench-$who"
      printf 'subjectAltName=IP:127.0.0.1\n' >"$who.ext"
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$who.ext" -out "$who.crt"
    done
  ) >>"$OUT/tls-setup.log" 2>&1 || { echo "peers.sh: openssl certificate setup failed" >&2; exit 1; }
  TLS_ARGS=(--security-protocol ssl --ssl-ca "$d/ca.crt" --ssl-cert "$d/client.crt"
    --ssl-key "$d/client.key")
}
TLS_ARGS=()

# Starts a kpool broker in the given flush mode (or "tls": durable behind SSL://) on free
# ports; sets KP_ADDR, KP_PID, KP_DIR. Retries with new ports: other programs on a shared
# machine may take a port in between.
start_kpool() {
  local mode=$1 try port admin flush=$1 listener=PLAINTEXT extra=()
  if [ "$mode" = tls ]; then
    make_tls
    flush=durable
    listener=SSL
    extra=(--set "ssl.ca.location=$WORK/tls/ca.crt" --set "ssl.certificate.location=$WORK/tls/broker.crt"
      --set "ssl.key.location=$WORK/tls/broker.key" --set ssl.client.auth=required)
  fi
  for try in 1 2 3 4 5; do
    port=$(free_port)
    admin=$(free_port)
    KP_DIR="$WORK/kpool-$mode"
    rm -rf "$KP_DIR"
    mkdir -p "$KP_DIR"
    "$KPOOL" broker --set "listeners=$listener://127.0.0.1:$port" \
      --set "admin.listener=127.0.0.1:$admin" --set "log.dirs=$KP_DIR/data" \
      --set "log.flush.policy=$flush" --set log.level=warn "${extra[@]}" >>"$OUT/kpool-$mode.log" 2>&1 &
    KP_PID=$!
    if wait_port "$port" 10 && kill -0 "$KP_PID" 2>/dev/null; then
      KP_ADDR="127.0.0.1:$port"
      PIDS+=("$KP_PID")
      return 0
    fi
    kill "$KP_PID" 2>/dev/null || true
    wait "$KP_PID" 2>/dev/null || true
  done
  echo "peers.sh: cannot start kpool broker ($mode); see $OUT/kpool-$mode.log" >&2
  exit 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Starts etcd and 3 durable kpool brokers joined through it (a replicated pool); sets KP_ADDR
# (every broker), KP_PIDS, KP_DIR, ETCD_PID.
start_kpool_pool() {
  local try i port client peer ok
  KP_DIR="$WORK/kpool-rf3"
  for try in 1 2 3; do
    rm -rf "$KP_DIR"
    mkdir -p "$KP_DIR"
    client=$(free_port)
    peer=$(free_port)
    etcd --name bench --data-dir "$KP_DIR/etcd" --listen-client-urls "http://127.0.0.1:$client" \
      --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "bench=http://127.0.0.1:$peer" >>"$OUT/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    wait_port "$client" 20 || { stop_pid "$ETCD_PID"; continue; }
    KP_PIDS=()
    KP_ADDR=
    ok=1
    for i in 1 2 3; do
      port=$(free_port)
      "$KPOOL" broker --set "listeners=PLAINTEXT://127.0.0.1:$port" \
        --set "admin.listener=127.0.0.1:$(free_port)" --set "log.dirs=$KP_DIR/data-$i" \
        --set log.flush.policy=pagecache --set log.level=warn --set "broker.id=$i" \
        --set "metadata.etcd.endpoints=http://127.0.0.1:$client" \
        --set metadata.etcd.prefix=/kpool/bench --set min.insync.replicas=2 \
        >>"$OUT/kpool-rf3-$i.log" 2>&1 &
      KP_PIDS+=($!)
      PIDS+=($!)
      wait_port "$port" 20 && kill -0 "$!" 2>/dev/null || ok=0
      KP_ADDR="${KP_ADDR:+$KP_ADDR,}127.0.0.1:$port"
    done
    # every broker sees the other two (they meet through etcd's watch)
    for i in $(seq 1 100); do
      [ "$ok" = 1 ] || break
      [ "$(kcat -b "$KP_ADDR" -L -J -m 5 2>/dev/null | python3 -c \
        'import json,sys; print(len(json.load(sys.stdin)["brokers"]))' 2>/dev/null)" = 3 ] && return 0
      sleep 0.2
    done
    stop_kpool_pool
  done
  echo "peers.sh: cannot start a replicated pool; see $OUT/kpool-rf3-*.log, $OUT/etcd.log" >&2
  exit 1
}

stop_kpool_pool() {
  local p
  for p in "${KP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${KP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_pid "$ETCD_PID"
  KP_PIDS=()
}
KP_PIDS=()

# Starts redis-server with AOF fsync policy $1; sets RD_PORT, RD_PID.
start_redis() {
  local fsync=$1 try
  for try in 1 2 3 4 5; do
    RD_PORT=$(free_port)
    local dir="$WORK/redis-$fsync"
    rm -rf "$dir"
    mkdir -p "$dir"
    redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$dir" --save "" \
      --appendonly yes --appendfsync "$fsync" --daemonize no \
      --logfile "$OUT/redis-$fsync.log" &
    RD_PID=$!
    if wait_port "$RD_PORT" 10 && kill -0 "$RD_PID" 2>/dev/null; then
      PIDS+=("$RD_PID")
      return 0
    fi
    stop_pid "$RD_PID"
  done
  echo "peers.sh: cannot start redis-server" >&2
  exit 1
}

# record TARGET WORKLOAD REP PHASE JSON [BROKER_CPU_S]: one line in results.jsonl.
record() {
  printf '{"target":"%s","workload":"%s","rep":%s,"phase":"%s","broker_cpu_s":%s,"result":%s}\n' \
    "$1" "$2" "$3" "$4" "${6:-null}" "$5" >>"$RESULTS"
}

# CPU seconds the kpool broker (every broker of a pool) has used so far, from /proc; empty if
# gone. The sum of its threads' run time in /proc/PID/task/*/schedstat (nanoseconds), or
# user + system ticks (10 ms) from /proc/PID/stat where schedstat is missing.
kpool_cpu() {
  local pids=("${KP_PIDS[@]}") p files=()
  [ "${#pids[@]}" -gt 0 ] || pids=("${KP_PID:-0}")
  [ "${1:-}" = kpool ] || return 0
  for p in "${pids[@]}"; do
    [ -r "/proc/$p/stat" ] || return 0
    files+=("/proc/$p/stat")
  done
  if [ -r "/proc/${pids[0]}/schedstat" ]; then
    for p in "${pids[@]}"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
      awk '{ ns += $1 } END { printf "%.4f", ns / 1e9 }'
    return 0
  fi
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); t += $12 + $13 }
    END { printf "%.3f", t / hz }' "${files[@]}"
}

# bench_json TARGET WORKLOAD REP PHASE ARGS...: runs kpool bench --json, records its line.
# A failed run is recorded too (ok=false) and reported; the script goes on.
bench_json() {
  local target=$1 wl=$2 rep=$3 phase=$4 line rc=0 cpu0 cpu1 cpu=
  shift 4
  cpu0=$(kpool_cpu "${target%%-*}")
  line=$("$KPOOL" bench --json -q "$@" 2>>"$OUT/bench-stderr.log") || rc=$?
  cpu1=$(kpool_cpu "${target%%-*}")
  [ -n "$cpu0" ] && [ -n "$cpu1" ] && cpu=$(awk "BEGIN { printf \"%.3f\", $cpu1 - $cpu0 }")
  if [ -z "$line" ]; then
    line='{"ok":false}'
  fi
  [ $rc -eq 0 ] || echo "peers.sh: $target $wl rep $rep $phase failed (exit $rc), see $OUT/bench-stderr.log" >&2
  record "$target" "$wl" "$rep" "$phase" "$line" "$cpu"
}

run_kpool() { # target rep size parts
  local target=$1 rep=$2 size=$3 parts=$4 n topic wl="$3:$4"
  n=$(count_for "$size")
  topic="w${size}p${parts}r${rep}"
  local tls=() rf=1
  [ "$target" = kpool-tls ] && tls=("${TLS_ARGS[@]}")
  [ "$target" = kpool-rf3 ] && rf=3
  bench_json "$target" "$wl" "$rep" produce -b "$KP_ADDR" --mode produce --topic "$topic" \
    --partitions "$parts" --replication "$rf" --message-size "$size" --count "$n" --acks all \
    --idempotence "${tls[@]}"
  drop_caches
  bench_json "$target" "$wl" "$rep" consume -b "$KP_ADDR" --mode consume --topic "$topic" "${tls[@]}"
}

run_mock() { # rep size parts
  local rep=$1 size=$2 parts=$3 n nc wl="$2:$3"
  n=$(count_for "$size")
  nc=$(mock_consume_count "$size" "$parts")
  bench_json mock "$wl" "$rep" produce --mock 1 --mode produce --partitions "$parts" \
    --message-size "$size" --count "$n" --acks all --idempotence
  bench_json mock "$wl" "$rep" consume --mock 1 --mode sequential --partitions "$parts" \
    --message-size "$size" --count "$nc" --acks all --idempotence
}

run_redis() { # target rep size parts (partitions: one stream per partition)
  local target=$1 rep=$2 size=$3 parts=$4 n line wl="$3:$4"
  n=$(count_for "$size")
  # appendfsync always manages ~10-50k msg/s here: a quarter of the count keeps the runtime
  # in check (rates are per second, so still comparable)
  [ "$target" = redis-always ] && n=$((n / 4))
  line=$(python3 "$top/bench/redis_streams.py" --port "$RD_PORT" --size "$size" \
    --count "$n" --streams "$parts" --key "w${size}p${parts}r${rep}" 2>>"$OUT/bench-stderr.log") ||
    echo "peers.sh: $target $wl rep $rep failed, see $OUT/bench-stderr.log" >&2
  [ -n "$line" ] || line='{"ok":false}'
  record "$target" "$wl" "$rep" both "$line"
}

# Starts nats-server with JetStream; sets NS_PORT, NS_PID.
start_nats() {
  local try dir="$WORK/nats"
  for try in 1 2 3 4 5; do
    NS_PORT=$(free_port)
    rm -rf "$dir"
    mkdir -p "$dir"
    nats-server -js -sd "$dir" -a 127.0.0.1 -p "$NS_PORT" >>"$OUT/nats.log" 2>&1 &
    NS_PID=$!
    if wait_port "$NS_PORT" 10 && kill -0 "$NS_PID" 2>/dev/null; then
      PIDS+=("$NS_PID")
      return 0
    fi
    stop_pid "$NS_PID"
  done
  echo "peers.sh: cannot start nats-server" >&2
  exit 1
}

run_nats() { # rep size parts (partitions: one stream per partition)
  local rep=$1 size=$2 parts=$3 n line wl="$2:$3"
  n=$(count_for "$size")
  line=$("$WORK/nats_js" --port "$NS_PORT" --size "$size" --count "$n" --streams "$parts" \
    2>>"$OUT/bench-stderr.log") || echo "peers.sh: nats-js $wl rep $rep failed" >&2
  [ -n "$line" ] || line='{"ok":false}'
  record nats-js "$wl" "$rep" both "$line"
}

run_latency() { # target rep
  local target=$1 rep=$2 wl="lat"
  local args=(--mode both --partitions 1 --message-size 1024 --rate "$RATE"
    --duration "$LAT_SECONDS" --acks all --idempotence --linger-ms 0)
  case $target in
  kpool-tls) bench_json "$target" "$wl" "$rep" both -b "$KP_ADDR" --topic "lat-r$rep" "${args[@]}" "${TLS_ARGS[@]}" ;;
  kpool-rf3) bench_json "$target" "$wl" "$rep" both -b "$KP_ADDR" --topic "lat-r$rep" \
    --replication 3 "${args[@]}" ;;
  kpool-*) bench_json "$target" "$wl" "$rep" both -b "$KP_ADDR" --topic "lat-r$rep" "${args[@]}" ;;
  mock) bench_json mock "$wl" "$rep" both --mock 1 "${args[@]}" ;;
  esac
}

have() { case " $TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }

if { have redis-always || have redis-no; } && ! command -v redis-server >/dev/null; then
  echo "peers.sh: redis-server not installed (apt-get install redis-server): skipping Redis" >&2
  TARGETS=$(echo "$TARGETS" | sed 's/redis-[a-z]*//g')
fi

if have kpool-rf3 && { ! command -v etcd >/dev/null || ! command -v kcat >/dev/null; }; then
  echo "peers.sh: etcd or kcat missing (./scripts/install-deps.sh): skipping kpool-rf3" >&2
  TARGETS=$(echo "$TARGETS" | sed 's/kpool-rf3//g')
fi

if have nats-js; then
  if ! command -v nats-server >/dev/null ||
    ! cc -std=gnu11 -O2 -o "$WORK/nats_js" "$top/bench/nats_js.c" -lnats 2>>"$OUT/bench-stderr.log"; then
    echo "peers.sh: nats-server or libnats-dev missing: skipping NATS JetStream" >&2
    TARGETS=$(echo "$TARGETS" | sed 's/nats-js//g')
  fi
fi

echo "peers.sh: targets: $TARGETS; workloads: $WORKLOADS + latency at $RATE msg/s;" \
  "reps: $REPS; scale: $SCALE; results in $OUT" >&2
start_s=$(date +%s)
for ((rep = 1; rep <= REPS; rep++)); do
  for target in $TARGETS; do
    echo "peers.sh: rep $rep/$REPS: $target" >&2
    case $target in
    kpool-durable | kpool-pagecache | kpool-tls)
      start_kpool "${target#kpool-}"
      for wl in $WORKLOADS; do run_kpool "$target" "$rep" "${wl%:*}" "${wl#*:}"; done
      [ "$LATENCY" = 0 ] || run_latency "$target" "$rep"
      stop_pid "$KP_PID"
      rm -rf "$KP_DIR"
      ;;
    kpool-rf3)
      start_kpool_pool
      for wl in $WORKLOADS; do run_kpool "$target" "$rep" "${wl%:*}" "${wl#*:}"; done
      [ "$LATENCY" = 0 ] || run_latency "$target" "$rep"
      stop_kpool_pool
      rm -rf "$KP_DIR"
      ;;
    mock)
      for wl in $WORKLOADS; do run_mock "$rep" "${wl%:*}" "${wl#*:}"; done
      [ "$LATENCY" = 0 ] || run_latency mock "$rep"
      ;;
    redis-always | redis-no)
      start_redis "${target#redis-}"
      for wl in $WORKLOADS; do run_redis "$target" "$rep" "${wl%:*}" "${wl#*:}"; done
      stop_pid "$RD_PID"
      ;;
    nats-js)
      start_nats
      for wl in $WORKLOADS; do run_nats "$rep" "${wl%:*}" "${wl#*:}"; done
      stop_pid "$NS_PID"
      ;;
    *) echo "peers.sh: unknown target '$target'" >&2 ;;
    esac
  done
done
elapsed=$(($(date +%s) - start_s))

python3 "$top/bench/peers_table.py" "$RESULTS" --reps "$REPS" --cold "$COLD" \
  --rate "$RATE" --seconds "$elapsed" | tee "$OUT/table.txt"
echo "peers.sh: raw results in $RESULTS" >&2
