"""bench/peers/asyncio_coro.py - bench_coro's workloads on asyncio.

Run with /usr/bin/python3. Prints, as peers of bench_coro's figures, the median of 5 runs of each:

    coro.await_pending_ns.peer.asyncio      K = 1,000 tasks each await a new Future; the driver sets
                                            all K results and yields once to the loop, which
                                            resumes them all (as ztwist's loop does)
    coro.await_fired_ns.peer.asyncio        await of a Future that is done (made beforehand)
    coro.bytes_per_suspended.peer.asyncio   resident memory (/proc/self/statm) per Task suspended
                                            on a Future, 100,000 suspended (10,000 with BENCH_QUICK=1)

N is 200,000 awaits (20,000 quick). The garbage collector is off while the clock runs.
"""

import asyncio
import gc
import os
import statistics
import time

REPS = 5
K = 1000
QUICK = os.environ.get("BENCH_QUICK") == "1"
N = 20000 if QUICK else 200000
NMEM = 10000 if QUICK else 100000


def report(name, runs, unit):
    runs = sorted(runs)
    print(f"BENCH {name}.peer.asyncio {fmt(statistics.median(runs))} {unit}")
    print(f"#   {name}.peer.asyncio: median of {len(runs)} runs, min {fmt(runs[0])} max {fmt(runs[-1])}")


def fmt(v):
    a = abs(v)
    return f"{v:.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.3f}" if a >= 1 else f"{v:.4g}"


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def await_pending():
    loop = asyncio.get_running_loop()
    rounds = N // K
    slots = [None] * K

    async def body(i):
        for _ in range(rounds):
            fut = loop.create_future()
            slots[i] = fut
            await fut

    tasks = [asyncio.ensure_future(body(i)) for i in range(K)]
    await asyncio.sleep(0)  # every task now waits on its first Future
    gc.disable()
    t0 = time.perf_counter_ns()
    for r in range(rounds):
        for f in slots:
            f.set_result(r)
        await asyncio.sleep(0)
    t1 = time.perf_counter_ns()
    gc.enable()
    await asyncio.gather(*tasks)
    return (t1 - t0) / (rounds * K)


async def await_fired():
    loop = asyncio.get_running_loop()
    futs = []
    for _ in range(N):
        f = loop.create_future()
        f.set_result(1)
        futs.append(f)
    gc.disable()
    t0 = time.perf_counter_ns()
    for f in futs:
        await f
    t1 = time.perf_counter_ns()
    gc.enable()
    return (t1 - t0) / N


async def memory():
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in range(NMEM)]

    async def body(f):
        await f

    gc.collect()
    before = rss_bytes()
    tasks = [asyncio.ensure_future(body(f)) for f in futs]
    await asyncio.sleep(0)  # every task has started and waits
    after = rss_bytes()
    for f in futs:
        f.set_result(None)
    await asyncio.gather(*tasks)
    return (after - before) / NMEM


def forked(fn):
    """Run fn in a child forked for this one run and return its figure: a fresh heap each time, as
    bench_util.h's bench_run_forked gives the C figures (pymalloc would reuse the last run's arenas)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, repr(fn()).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        value = float(f.read())
    os.waitpid(pid, 0)
    return value


def main():
    runs = {"pending": [], "fired": [], "mem": []}
    for _ in range(REPS):
        runs["pending"].append(asyncio.run(await_pending()))
        runs["fired"].append(asyncio.run(await_fired()))
        runs["mem"].append(forked(lambda: asyncio.run(memory())))
    report("coro.await_pending_ns", runs["pending"], "ns")
    report("coro.await_fired_ns", runs["fired"], "ns")
    report("coro.bytes_per_suspended", runs["mem"], "B")


main()
