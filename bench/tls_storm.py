#!/usr/bin/env python3
"""tls_storm.py — a reconnect storm against a TLS listener (issue 19).

Opens N mutual-TLS connections at once (asyncio, one process), each sends one ApiVersions
request and waits for the answer, as every client of a pool does after a restart. Prints one
JSON line: connections that succeeded, failed, the time until the last one was answered, and
handshakes per second. The client's own handshake work (one process, one core) is included:
on a 2-core machine the figure bounds the broker's rate from below. --procs P splits the N
clients over P processes that start together (real clients do their handshakes in parallel;
one Python process does them one after the other).

    python3 bench/tls_storm.py --port 9093 --ca ca.crt --cert client.crt --key client.key -n 2000
    python3 bench/tls_storm.py ... --procs 4  # 4 processes of 500 clients
"""
import argparse
import asyncio
import json
import multiprocessing
import resource
import ssl
import struct
import time

API_VERSIONS_V0 = struct.pack(">hhi", 18, 0, 1) + struct.pack(">h", 5) + b"storm"
REQUEST = struct.pack(">i", len(API_VERSIONS_V0)) + API_VERSIONS_V0


async def one(args, ctx, sem, out):
    async with sem:
        t0 = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", args.port, ssl=ctx, server_hostname="127.0.0.1"), args.timeout)
            w.write(REQUEST)
            n = struct.unpack(">i", await asyncio.wait_for(r.readexactly(4), args.timeout))[0]
            await asyncio.wait_for(r.readexactly(n), args.timeout)
            reused = w.get_extra_info("ssl_object").session_reused
            w.close()
            out.append((time.monotonic() - t0, reused))
        except Exception as e:  # noqa: BLE001 - counted and reported
            out.append((None, repr(e)))


async def storm(args, n, barrier):
    """n clients at once; returns [(seconds or None, reused or error)] and the start time."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 100)), hard))
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sem = asyncio.Semaphore(args.concurrency or n)
    out = []
    if barrier is not None:
        barrier.wait()
    t0 = time.time()
    await asyncio.gather(*(one(args, ctx, sem, out) for _ in range(n)))
    return out, t0, time.time()


def worker(args, n, barrier, queue):
    queue.put(asyncio.run(storm(args, n, barrier)))


def main(args):
    if args.procs <= 1:
        out, t0, t1 = asyncio.run(storm(args, args.n, None))
    else:
        barrier, queue = multiprocessing.Barrier(args.procs), multiprocessing.Queue()
        shares = [args.n // args.procs + (i < args.n % args.procs) for i in range(args.procs)]
        procs = [multiprocessing.Process(target=worker, args=(args, k, barrier, queue))
                 for k in shares]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        out = [r for res in results for r in res[0]]
        t0, t1 = min(res[1] for res in results), max(res[2] for res in results)
    elapsed = t1 - t0
    ok = sorted(t for t, _ in out if t is not None)
    errors = [e for t, e in out if t is None]
    print(json.dumps({
        "connections": args.n, "procs": max(1, args.procs), "ok": len(ok), "failed": len(errors),
        "first_error": errors[0] if errors else None,
        "reused": sum(1 for t, e in out if t is not None and e is True),
        "seconds": round(elapsed, 3), "handshakes_per_s": round(len(ok) / elapsed, 1),
        "p50_ms": round(1000 * ok[len(ok) // 2], 1) if ok else None,
        "max_ms": round(1000 * ok[-1], 1) if ok else None}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=0, help="at most this many at once (0: all)")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--tls12", action="store_true")
    ap.add_argument("--procs", type=int, default=1, help="client processes sharing the N clients")
    main(ap.parse_args())
