#!/usr/bin/env python3
"""tls_ratio.py — TLS against plaintext from one bench/peers.sh run (issue 19).

Reads $PEERS_OUT/results.jsonl of a run with PEERS_TARGETS="kpool-durable kpool-tls" and prints,
per workload and side, the median msg/s of each target, the ratio TLS / plaintext, and the
broker's CPU (from /proc: per-thread schedstat, or user + system ticks) per MB of payload
and TLS / plaintext CPU per MB — medians over the repetitions.

    PEERS_TARGETS="kpool-durable kpool-tls" PEERS_LATENCY=0 PEERS_SCALE=0.5 ./bench/peers.sh
    python3 bench/tls_ratio.py /tmp/kpool-peers.XXXXXX/results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    runs = defaultdict(list)  # (workload, side, target) -> [(msg/s, cpu ms per MB)]
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            res, side = rec.get("result", {}), rec.get("phase")
            s = res.get(side)
            if not res.get("ok") or not s or not s.get("msgs"):
                continue
            mb = s["mb_per_s"] * s.get("seconds", 0) if "seconds" in s else None
            if mb is None and s.get("msg_per_s"):
                mb = s["mb_per_s"] * s["msgs"] / s["msg_per_s"]
            cpu = rec.get("broker_cpu_s")
            cpu_mb = cpu * 1000.0 / mb if cpu is not None and mb else None
            runs[(rec["workload"], side, rec["target"])].append((s["msg_per_s"], cpu_mb))

    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    print("| workload | side | plaintext msg/s | TLS msg/s | ratio | plaintext CPU ms/MB | TLS CPU ms/MB"
          " | CPU ratio | n |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for wl in sorted({k[0] for k in runs}, key=lambda w: (-int(w.split(":")[0]), int(w.split(":")[1]))):
        for side in ("produce", "consume"):
            p = runs.get((wl, side, "kpool-durable"), [])
            t = runs.get((wl, side, "kpool-tls"), [])
            pm, tm = med([r[0] for r in p]), med([r[0] for r in t])
            pc, tc = med([r[1] for r in p]), med([r[1] for r in t])
            ratio = "%.2f" % (tm / pm) if pm and tm else "-"
            cratio = "%.2f" % (tc / pc) if pc and tc else "-"
            f = lambda v, spec: "-" if v is None else spec % v
            size, parts = wl.split(":")
            name = "%s × %s" % ("1 KiB" if size == "1024" else size + " B", parts)
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                name, side, f(pm, "%.0f"), f(tm, "%.0f"), ratio,
                f(pc, "%.2f"), f(tc, "%.2f"), cratio, len(p), len(t)))


if __name__ == "__main__":
    main(sys.argv[1])
