#!/usr/bin/env python3
"""idle_topics.py — idle CPU of a `kpool up` that holds many Topics (docs/performance.md).

  KPOOL_CONFIG=DIR/config.yaml bench/idle_topics.py --pid PID --create 10000 --seconds 125

--create N PUTs Topics t00000..t<N-1> (team-a, pool dev, 1 partition, one ACL) through the
control plane API named in $KPOOL_CONFIG, then waits --settle seconds. It then prints the
process's CPU (utime+stime from /proc/PID/stat) over --seconds as % of one core, and with
--per-second the ticks used in each second (drift checks, control.resync.interval.ms, show
up as bursts).
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import time

import yaml


def create(n, start):
    cfg = yaml.safe_load(open(os.environ["KPOOL_CONFIG"]))
    host = cfg["server"].split("//")[1]
    hdr = {"Authorization": "Bearer " + cfg["token"], "Content-Type": "application/json"}

    def work(rng):
        c = http.client.HTTPConnection(host, timeout=60)
        for i in rng:
            name = "t%05d" % i
            body = {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
                    "metadata": {"name": name, "namespace": "team-a"},
                    "spec": {"pool": "dev", "config": {"partitions": 1, "replication": 1},
                             "acl": [{"team": "team-a", "application": "app1",
                                      "access": "readwrite"}]}}
            c.request("PUT", "/apis/kafka.nais.io/v1/namespaces/team-a/topics/" + name,
                      json.dumps(body), hdr)
            r = c.getresponse()
            data = r.read()
            if r.status >= 300:
                raise SystemExit("PUT %s: %d %s" % (name, r.status, data[:200]))

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(work, [range(start + k, start + n, 4) for k in range(4)]))


def ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--create", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--settle", type=int, default=60)
    ap.add_argument("--seconds", type=int, default=125)
    ap.add_argument("--per-second", action="store_true")
    a = ap.parse_args()
    if a.create:
        create(a.create, a.start)
        time.sleep(a.settle)
    hz = os.sysconf("SC_CLK_TCK")
    t0 = ticks(a.pid)
    per = []
    prev = t0
    for _ in range(a.seconds):
        time.sleep(1)
        cur = ticks(a.pid)
        per.append(cur - prev)
        prev = cur
    print("CPU over %d s: %.2f %% of one core" % (a.seconds, 100.0 * (prev - t0) / hz / a.seconds))
    if a.per_second:
        print("ticks per second:", " ".join(map(str, per)))


if __name__ == "__main__":
    main()
