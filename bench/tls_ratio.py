#!/usr/bin/env python3
"""tls_ratio.py — TLS against plaintext from one bench/peers.sh run (issue 19).

Reads $PEERS_OUT/results.jsonl of a run with PEERS_TARGETS="kpool-durable kpool-tls" and prints,
per workload and side, the median msg/s of each target, the ratio TLS / plaintext, and the
broker's CPU (from /proc: per-thread schedstat, or user + system ticks) per MB of payload
and TLS / plaintext CPU per MB, the client's CPU per MB (`kpool bench`'s own cpu_s: every
thread of the process, librdkafka's included) and TLS / plaintext of the two together —
medians over the repetitions. Client and broker share the machine's cores, so when a
plaintext run already keeps them busy, TLS / plaintext msg/s cannot beat the inverse of the
last column.

    PEERS_TARGETS="kpool-durable kpool-tls" PEERS_LATENCY=0 PEERS_SCALE=0.5 ./bench/peers.sh
    python3 bench/tls_ratio.py /tmp/kpool-peers.XXXXXX/results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    runs = defaultdict(list)  # (workload, side, target) -> [(msg/s, broker and client CPU ms/MB)]
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
            ccpu = res.get("cpu_s")
            ccpu_mb = ccpu * 1000.0 / mb if ccpu is not None and mb else None
            both = cpu_mb + ccpu_mb if cpu_mb is not None and ccpu_mb is not None else None
            runs[(rec["workload"], side, rec["target"])].append(
                (s["msg_per_s"], cpu_mb, ccpu_mb, both))

    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    print("| workload | side | plaintext msg/s | TLS msg/s | ratio | plaintext CPU ms/MB | TLS CPU ms/MB"
          " | CPU ratio | client plaintext ms/MB | client TLS ms/MB | both: TLS / plaintext | n |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for wl in sorted({k[0] for k in runs}, key=lambda w: (-int(w.split(":")[0]), int(w.split(":")[1]))):
        for side in ("produce", "consume"):
            p = runs.get((wl, side, "kpool-durable"), [])
            t = runs.get((wl, side, "kpool-tls"), [])
            pm, tm = med([r[0] for r in p]), med([r[0] for r in t])
            pc, tc = med([r[1] for r in p]), med([r[1] for r in t])
            pcl, tcl = med([r[2] for r in p]), med([r[2] for r in t])
            pb, tb = med([r[3] for r in p]), med([r[3] for r in t])
            ratio = "%.2f" % (tm / pm) if pm and tm else "-"
            cratio = "%.2f" % (tc / pc) if pc and tc else "-"
            bratio = "%.2f" % (tb / pb) if pb and tb else "-"
            f = lambda v, spec: "-" if v is None else spec % v
            size, parts = wl.split(":")
            name = "%s × %s" % ("1 KiB" if size == "1024" else size + " B", parts)
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                name, side, f(pm, "%.0f"), f(tm, "%.0f"), ratio, f(pc, "%.2f"), f(tc, "%.2f"),
                cratio, f(pcl, "%.2f"), f(tcl, "%.2f"), bratio, len(p), len(t)))


if __name__ == "__main__":
    main(sys.argv[1])
