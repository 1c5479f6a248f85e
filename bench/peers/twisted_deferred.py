"""bench/peers/twisted_deferred.py - bench_deferred's workloads on Twisted's Deferred.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints, as peers of bench_deferred's
figures, the median of 5 runs of each workload:

    deferred.build_fire_ns_per_callback.peer.twisted  Deferred(), 10 x addCallback, callback(0)
    deferred.fire_ns_per_callback.peer.twisted        callback(0) on Deferreds built beforehand
    deferred.chain_ns_per_hop.peer.twisted            a chain of N Deferreds, each callback
                                                      returning the next one
    deferred.bytes_per_pending.peer.twisted           memory per unfired Deferred (tracemalloc)
    deferred.bytes_per_callback.peer.twisted          memory per addCallback (tracemalloc)

N is 200,000 Deferreds (2,000 with BENCH_QUICK=1), smaller than the C benchmark's 1,000,000
because ten million Python callbacks take about 15 s per run and Twisted's per-callback cost does
not depend on N. The runs happen one after another in this process, unlike the C benchmark's
forked runs: a forked Python child pays copy-on-write faults for every object whose reference
count it touches (twice the time per hop, measured that way), and pymalloc showed no drift from
run to run. The garbage collector is off while the clock runs, as timeit does, and while the
Deferreds of a run are built. Times are wall-clock; the same runs on the thread's CPU time are
printed as '#' comments, as bench_deferred does. Memory is the growth of tracemalloc's traced total while 20,000
objects (2,000 quick) are alive (tracing is slow and the figure is the same for any N): the sizes Python asked
its allocator for, without the allocator's own overhead.
"""

import gc
import os
import statistics
import sys
import time
import tracemalloc

REPS = 5
CALLBACKS = 10


def report(name, runs, unit):
    runs = sorted(runs)
    median = statistics.median(runs)
    print(f"BENCH {name}.peer.twisted {fmt(median)} {unit}")
    print(f"#   {name}.peer.twisted: median of {len(runs)} runs, "
          f"min {fmt(runs[0])} max {fmt(runs[-1])}")
    sys.stdout.flush()


def fmt(v):
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.3f}"
    return f"{v:.4g}"


def inc(x):
    return x + 1


def build_fire(Deferred, n):
    """ns per callback to build a Deferred with 10 callbacks and fire it, one after another."""
    gc.disable()
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(n):
        d = Deferred()
        for _ in range(CALLBACKS):
            d.addCallback(inc)
        d.callback(0)
        if d.result != CALLBACKS:
            raise AssertionError("wrong result")
    took, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    gc.enable()
    return took / (n * CALLBACKS), cpu / (n * CALLBACKS)


def fire_only(Deferred, n):
    """ns per callback to fire n Deferreds with 10 callbacks each, built beforehand."""
    gc.disable()
    ds = []
    for _ in range(n):
        d = Deferred()
        for _ in range(CALLBACKS):
            d.addCallback(inc)
        ds.append(d)
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for d in ds:
        d.callback(0)
    took, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    gc.enable()
    if any(d.result != CALLBACKS for d in ds):
        raise AssertionError("wrong result")
    return took / (n * CALLBACKS), cpu / (n * CALLBACKS)


def chain(Deferred, n):
    """ns per hop: fire d[0..n-2] in turn (each callback returns the next, unfired, Deferred, so
    each one waits on the next), then fire d[n-1]; its result unwinds back to d[0]."""
    gc.disable()
    ds = [Deferred() for _ in range(n)]
    for i in range(n - 1):
        ds[i].addCallback(lambda _, nxt=ds[i + 1]: nxt)
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for i in range(n - 1):
        ds[i].callback(None)
    ds[n - 1].callback(42)
    took, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    gc.enable()
    if ds[0].result != 42:
        raise AssertionError("the chain did not unwind")
    return took / n, cpu / n


def memory(Deferred, n):
    """(bytes per pending Deferred, bytes per added callback), from tracemalloc deltas."""
    gc.disable()
    ds = [None] * n
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        ds[i] = Deferred()
    pending = tracemalloc.get_traced_memory()[0]
    for d in ds:
        for _ in range(CALLBACKS):
            d.addCallback(inc)
    with_callbacks = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    gc.enable()
    return (pending - base) / n, (with_callbacks - pending) / (n * CALLBACKS)


def main():
    try:
        import twisted
        from twisted.internet.defer import Deferred
    except ImportError as e:
        print(f"# skipped: twisted_deferred: Twisted is not importable by {sys.executable}: {e}")
        return 0
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = 2_000 if quick else 200_000
    print(f"# Twisted {twisted.__version__} on Python {sys.version.split()[0]}: "
          f"N = {n} Deferreds, {CALLBACKS} callbacks each")
    sys.stdout.flush()
    for name, fn in (("deferred.build_fire_ns_per_callback", build_fire),
                     ("deferred.fire_ns_per_callback", fire_only),
                     ("deferred.chain_ns_per_hop", chain)):
        runs = [fn(Deferred, n) for _ in range(REPS)]
        report(name, [wall for wall, _ in runs], "ns")
        print(f"#   {name}.peer.twisted on CPU time: "
              f"{fmt(statistics.median(cpu for _, cpu in runs))} ns (median of {REPS} runs)")
    mem = [memory(Deferred, min(n, 20_000)) for _ in range(REPS)]
    report("deferred.bytes_per_pending", [m[0] for m in mem], "B")
    report("deferred.bytes_per_callback", [m[1] for m in mem], "B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
