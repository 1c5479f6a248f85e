"""bench/peers/twisted_threads.py - the pool's workloads on Twisted's reactor thread pool.

Run with /usr/bin/python3 (the interpreter that has Twisted). Every run is a child process of its
own (a Twisted reactor cannot restart, and a run that leaves a million objects behind would slow
the next one), on the reactor's pool sized 4 (suggestThreadPoolSize(4)). Prints the median of the
runs as peers of bench_pool's figures.

The issue's workload, run faithfully: N = 1,000,000 deferToThread of a trivial function (20,000
with BENCH_QUICK=1), the interpreter's default garbage collector (left as it is: on), timed from
the first submission until the last Deferred's callback has run. One run takes tens of seconds
(minutes on a busy machine), so these are the median of 3 runs (1 quick):

    pool.defer_to_thread_burst_per_s.peer.twisted  all N submitted at once from one reactor call,
                                                   as bench_pool's burst figure
    pool.defer_to_thread_per_s.peer.twisted        the same N, at most 65,536 in flight (one more
                                                   from each callback), as bench_pool's windowed
                                                   figure

The old style, printed for comparison only, median of 5 runs: N = 50,000 (5,000 quick) with the
garbage collector switched off while the clock runs (as timeit does). Fewer live objects and no
collections flatter Twisted by several times; these are not the issue's workload:

    pool.defer_to_thread_per_s_small_n_gc_off.peer.twisted        windowed, as above
    pool.defer_to_thread_burst_per_s_small_n_gc_off.peer.twisted  all at once
    pool.round_trip_per_s.peer.twisted             N/2 = 25,000 callInThread whose function calls
                                                   callFromThread back, all at once (GC off)
    pool.rtt_p50_us.peer.twisted, _p99_us          one at a time: callInThread, callFromThread
                                                   back, the next from there; 5,000 (500 quick)
                                                   (GC off)
"""

import gc
import os
import statistics
import subprocess
import sys
import time

WINDOW = 65536


def fmt(v):
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.3f}"
    return f"{v:.4g}"


def report(name, runs, unit, note=""):
    runs = sorted(runs)
    print(f"BENCH {name}.peer.twisted {fmt(statistics.median(runs))} {unit}")
    print(f"#   {name}.peer.twisted: median of {len(runs)} runs, "
          f"min {fmt(runs[0])} max {fmt(runs[-1])}{note}")
    sys.stdout.flush()


def trivial():
    return 1


# --- one run, in a child process -------------------------------------------------------------


class Run:
    """One workload inside one reactor.run(); prints its figure(s) and stops the reactor."""

    def __init__(self, reactor, workload, n, gc_off):
        self.reactor = reactor
        self.workload = workload
        self.n = n
        self.gc_off = gc_off
        self.done = 0
        self.submitted = 0

    def start(self):
        if self.gc_off:
            gc.collect()
            gc.disable()
        getattr(self, self.workload)()

    def finish(self, *values):
        if self.gc_off:
            gc.enable()
        print(" ".join(repr(v) for v in values))
        sys.stdout.flush()
        self.reactor.stop()

    # --- defer_to_thread ---
    def defers(self, window):
        from twisted.internet import threads

        self.defer = threads.deferToThread
        self.t0 = time.perf_counter()
        self.submit(min(window, self.n))

    def submit(self, k):
        for _ in range(k):
            self.submitted += 1
            self.defer(trivial).addCallback(self.on_result)

    def on_result(self, value):
        self.done += value
        if self.done == self.n:
            self.finish(self.n / (time.perf_counter() - self.t0))
        elif self.submitted < self.n:
            self.submit(1)

    def windowed(self):
        self.defers(WINDOW)

    def burst(self):
        self.defers(self.n)

    # --- round trips, all at once ---
    def round_trips(self):
        self.t0 = time.perf_counter()
        for _ in range(self.n):
            self.reactor.callInThread(self.reactor.callFromThread, self.on_back)

    def on_back(self):
        self.done += 1
        if self.done == self.n:
            self.finish(self.n / (time.perf_counter() - self.t0))

    # --- one at a time ---
    def latency(self):
        self.samples = []
        self.ping()

    def ping(self):
        self.t0 = time.perf_counter()
        self.reactor.callInThread(self.reactor.callFromThread, self.pong)

    def pong(self):
        self.samples.append((time.perf_counter() - self.t0) * 1e6)
        if len(self.samples) < self.n:
            self.ping()
            return
        s = sorted(self.samples)
        self.finish(statistics.median(s), s[min(len(s) - 1, int(0.99 * (len(s) - 1) + 0.5))])


def child(workload, n, gc_off):
    from twisted.internet import reactor

    reactor.suggestThreadPoolSize(4)
    run = Run(reactor, workload, n, gc_off)
    reactor.callWhenRunning(run.start)
    reactor.run()


# --- the parent: runs each workload REPS times, each in a new process ---------------------------


def runs(workload, n, gc_off, reps):
    out = []
    for _ in range(reps):
        args = [sys.executable, __file__, "--child", workload, str(n), "1" if gc_off else "0"]
        res = subprocess.run(args, stdout=subprocess.PIPE, check=True, text=True)
        out.append([float(v) for v in res.stdout.split()])
    return out


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n_full = 20_000 if quick else 1_000_000
    full_reps = 1 if quick else 3
    n_old = 5_000 if quick else 50_000
    pings = 500 if quick else 5_000
    import twisted

    print(f"# Twisted {twisted.__version__} reactor thread pool of 4. The issue's workload: "
          f"{n_full} deferToThread, all at once and {WINDOW} in flight, default GC, median of "
          f"{full_reps}. Old style (not the issue's workload): {n_old}, GC off while timing, "
          f"median of 5; {n_old // 2} round trips at once, {pings} one at a time")
    sys.stdout.flush()
    burst = [r[0] for r in runs("burst", n_full, False, full_reps)]
    report("pool.defer_to_thread_burst_per_s", burst, "tasks/s",
           f" (the issue's workload: N = {n_full} all at once, default GC)")
    windowed = [r[0] for r in runs("windowed", n_full, False, full_reps)]
    report("pool.defer_to_thread_per_s", windowed, "tasks/s",
           f" (N = {n_full}, {WINDOW} in flight, default GC)")
    old = [r[0] for r in runs("windowed", n_old, True, 5)]
    report("pool.defer_to_thread_per_s_small_n_gc_off", old, "tasks/s",
           f" (old style: N = {n_old}, GC off while timing; flatters Twisted)")
    old_burst = [r[0] for r in runs("burst", n_old, True, 5)]
    report("pool.defer_to_thread_burst_per_s_small_n_gc_off", old_burst, "tasks/s",
           f" (old style: N = {n_old} all at once, GC off while timing)")
    trips = [r[0] for r in runs("round_trips", n_old // 2, True, 5)]
    report("pool.round_trip_per_s", trips, "trips/s", f" (N = {n_old // 2}, GC off while timing)")
    lat = runs("latency", pings, True, 5)
    report("pool.rtt_p50_us", [r[0] for r in lat], "us", " (GC off while timing)")
    report("pool.rtt_p99_us", [r[1] for r in lat], "us", " (GC off while timing)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
    else:
        main()
