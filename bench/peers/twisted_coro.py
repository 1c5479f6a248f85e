"""bench/peers/twisted_coro.py - bench_coro's workloads on Twisted's inlineCallbacks / ensureDeferred.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints, as peers of bench_coro's figures,
the median of 5 runs of each workload:

    coro.await_pending_ns.peer.twisted      K = 1,000 inlineCallbacks generators each yield a new
                                            Deferred; the driver fires all K, which resumes each
                                            (Twisted resumes inside callback(); ztwist from its loop)
    coro.await_fired_ns.peer.twisted        yield of a Deferred that has fired (made beforehand)
    coro.start_finish_ns.peer.twisted       ensureDeferred of a coroutine that awaits nothing
    coro.bytes_per_suspended.peer.twisted   resident memory (/proc/self/statm) per suspended
                                            inlineCallbacks generator and the Deferreds it holds,
                                            100,000 suspended (10,000 with BENCH_QUICK=1)

N is 200,000 awaits (20,000 quick). The garbage collector is off while the clock runs, as timeit does.
"""

import gc
import os
import statistics
import time

from twisted.internet.defer import Deferred, ensureDeferred, inlineCallbacks, succeed

REPS = 5
K = 1000
QUICK = os.environ.get("BENCH_QUICK") == "1"
N = 20000 if QUICK else 200000
NMEM = 10000 if QUICK else 100000


def report(name, runs, unit):
    runs = sorted(runs)
    print(f"BENCH {name}.peer.twisted {fmt(statistics.median(runs))} {unit}")
    print(f"#   {name}.peer.twisted: median of {len(runs)} runs, min {fmt(runs[0])} max {fmt(runs[-1])}")


def fmt(v):
    a = abs(v)
    return f"{v:.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.3f}" if a >= 1 else f"{v:.4g}"


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def await_pending():
    rounds = N // K
    slots = [None] * K

    @inlineCallbacks
    def body(i):
        for _ in range(rounds):
            d = Deferred()
            slots[i] = d
            yield d

    done = [body(i) for i in range(K)]
    gc.disable()
    t0 = time.perf_counter_ns()
    for r in range(rounds):
        for i in range(K):
            slots[i].callback(r)
    t1 = time.perf_counter_ns()
    gc.enable()
    assert all(d.called for d in done)
    return (t1 - t0) / (rounds * K)


def await_fired():
    ds = [succeed(1) for _ in range(N)]
    out = []

    @inlineCallbacks
    def body():
        t0 = time.perf_counter_ns()
        for d in ds:
            yield d
        out.append((time.perf_counter_ns() - t0) / N)

    gc.disable()
    body()
    gc.enable()
    return out[0]


def start_finish():
    async def nothing():
        return None

    gc.disable()
    t0 = time.perf_counter_ns()
    for _ in range(N):
        ensureDeferred(nothing())
    t1 = time.perf_counter_ns()
    gc.enable()
    return (t1 - t0) / N


def memory():
    slots = [None] * NMEM

    @inlineCallbacks
    def body(i):
        d = Deferred()
        slots[i] = d
        yield d

    gc.collect()
    before = rss_bytes()
    done = [body(i) for i in range(NMEM)]
    after = rss_bytes()
    for d in slots:
        d.callback(None)
    del done
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
    runs = {"pending": [], "fired": [], "start": [], "mem": []}
    for _ in range(REPS):
        runs["pending"].append(await_pending())
        runs["fired"].append(await_fired())
        runs["start"].append(start_finish())
        runs["mem"].append(forked(lambda: memory()))
    report("coro.await_pending_ns", runs["pending"], "ns")
    report("coro.await_fired_ns", runs["fired"], "ns")
    report("coro.start_finish_ns", runs["start"], "ns")
    report("coro.bytes_per_suspended", runs["mem"], "B")


main()
