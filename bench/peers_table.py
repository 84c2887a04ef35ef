#!/usr/bin/env python3
"""peers_table.py — turns bench/peers.sh's results.jsonl into the comparison table.

Every line is {"target", "workload", "rep", "phase", "result"} where result is a
`kpool bench --json` object (or the same shape from redis_streams.py). For each workload,
target and side (produce / consume) it prints the median over repetitions of msg/s, MB/s and
the latency percentiles, then the ratios kpool/peer of the median msg/s. A run that failed
counts as missing, and the number of good runs is shown.
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict

KPOOL = ("kpool-durable", "kpool-pagecache")
ORDER = ["kpool-durable", "kpool-rf3", "kpool-pagecache", "kpool-tls", "mock", "redis-always", "redis-no", "nats-js"]


def load(path):
    runs = defaultdict(list)  # (workload, target, side) -> [side result]
    failed = defaultdict(int)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            res = rec.get("result", {})
            sides = ["produce", "consume"]
            for side in sides:
                if side not in res:
                    continue
                if rec["phase"] in ("produce", "consume") and rec["phase"] != side:
                    continue  # e.g. the mock's sequential read-back: only its consume side
                key = (rec["workload"], rec["target"], side)
                s = res[side]
                if not res.get("ok", False) or s.get("msgs", 0) == 0:
                    failed[key] += 1
                    continue
                runs[key].append(s)
            if not any(side in res for side in sides):
                failed[(rec["workload"], rec["target"], rec["phase"])] += 1
    return runs, failed


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def lat(s, p):
    return s.get("latency_us", {}).get(p)


def fmt_ms(us):
    return "-" if us is None else ("%.2f" % (us / 1000.0))


def fmt_num(v, spec="%.0f"):
    return "-" if v is None else spec % v


def summary(runs, key):
    rs = runs.get(key, [])
    if not rs:
        return None
    return {
        "n": len(rs),
        "msgs": med([r["msgs"] for r in rs]),
        "msg_per_s": med([r["msg_per_s"] for r in rs]),
        "mb_per_s": med([r["mb_per_s"] for r in rs]),
        "spread": (min(r["msg_per_s"] for r in rs), max(r["msg_per_s"] for r in rs)),
        "p50": med([lat(r, "p50") for r in rs]),
        "p99": med([lat(r, "p99") for r in rs]),
        "p999": med([lat(r, "p999") for r in rs]),
    }


def workload_title(wl, args):
    if wl == "lat":
        return ("latency: 1 KiB, 1 partition, fixed rate %s msg/s, acks=all, idempotence, "
                "linger.ms=0; producer and consumer at once" % args.rate)
    size, parts = wl.split(":")
    size = "1 KiB" if size == "1024" else size + " B"
    return "%s x %s partition%s, acks=all, idempotence, as fast as possible" % (
        size, parts, "" if parts == "1" else "s")


def print_workload(wl, runs, failed, args):
    targets = sorted({k[1] for k in runs if k[0] == wl} | {k[1] for k in failed if k[0] == wl},
                     key=lambda t: ORDER.index(t) if t in ORDER else 99)
    print()
    print("== " + workload_title(wl, args))
    hdr = "%-16s %-8s %4s %10s %11s %9s %9s %9s %9s %17s" % (
        "target", "side", "runs", "msgs", "msg/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms",
        "msg/s min..max")
    print(hdr)
    print("-" * len(hdr))
    sums = {}
    for t in targets:
        for side in ("produce", "consume"):
            s = summary(runs, (wl, t, side))
            nfail = failed.get((wl, t, side), 0)
            if s is None and not nfail:
                continue
            sums[(t, side)] = s
            if s is None:
                print("%-16s %-8s %4s   all %d runs failed" % (t, side, 0, nfail))
                continue
            label = side
            if wl == "lat" and side == "consume":
                label = "e2e"
            print("%-16s %-8s %4s %10s %11s %9s %9s %9s %9s %17s" % (
                t, label, "%d%s" % (s["n"], "!" if nfail else ""), fmt_num(s["msgs"]),
                fmt_num(s["msg_per_s"]), fmt_num(s["mb_per_s"], "%.1f"), fmt_ms(s["p50"]),
                fmt_ms(s["p99"]), fmt_ms(s["p999"]),
                "%.0f..%.0f" % s["spread"]))
    # ratios: kpool / peer, on median msg/s (throughput) or median p50/p99 (latency)
    lines = []
    pairs = [(k, peer) for k in KPOOL for peer in targets
             if peer not in KPOOL and peer not in ("kpool-tls", "kpool-rf3")]
    # what replication costs: 3 brokers, RF 3, acks=all against the same durable single broker
    pairs.insert(0, ("kpool-rf3", "kpool-durable"))
    # what TLS costs: the same durable broker behind SSL:// with client certificates
    pairs.insert(0, ("kpool-tls", "kpool-durable"))
    for k, peer in pairs:
        parts = []
        for side in ("produce", "consume"):
            a, b = sums.get((k, side)), sums.get((peer, side))
            if not a or not b:
                continue
            if wl == "lat":
                if a["p50"] and b["p50"] and a["p99"] and b["p99"]:
                    parts.append("%s p50 x%.2f p99 x%.2f" % (
                        "e2e" if side == "consume" else "ack", a["p50"] / b["p50"],
                        a["p99"] / b["p99"]))
            elif b["msg_per_s"]:
                parts.append("%s x%.2f" % (side, a["msg_per_s"] / b["msg_per_s"]))
        if parts:
            lines.append("  %s / %s: %s" % (k, peer, ", ".join(parts)))
    if lines:
        print("ratios (%s):" % ("latency, lower is better" if wl == "lat"
                                else "median msg/s, higher is better for kpool"))
        print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--cold", default="?")
    ap.add_argument("--rate", default="?")
    ap.add_argument("--seconds", default="?")
    args = ap.parse_args()
    runs, failed = load(args.results)
    wls = []
    for (wl, _, _) in list(runs) + list(failed):
        if wl not in wls:
            wls.append(wl)
    wls.sort(key=lambda w: (w == "lat", w))
    print("kpool peers benchmark: medians of %s repetitions (runtime %s s)" % (args.reps,
                                                                               args.seconds))
    print("consume = a fresh consumer reading the produced messages back; kpool from its log"
          " (page cache %s), mock from memory (capped to ~4 MiB/partition), Redis via XRANGE,"
          " NATS via pull consumers"
          % ("dropped first" if args.cold not in ("0", "?") else "warm"))
    print("latency = produce: send -> delivery report (acks=all); e2e: scheduled send -> "
          "consumer; '!' after runs = some runs failed")
    for wl in wls:
        print_workload(wl, runs, failed, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
