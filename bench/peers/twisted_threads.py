"""bench/peers/twisted_threads.py - the pool's workloads on Twisted's reactor thread pool.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints, as peers of bench_pool's
figures, the median of 5 runs, all inside one reactor.run() (a Twisted reactor cannot restart), on
the reactor's pool sized 4 (suggestThreadPoolSize(4)):

    pool.defer_to_thread_per_s.peer.twisted        N deferToThread of a trivial function, at most
                                                   65,536 in flight (one more from each callback),
                                                   until the last Deferred has fired
    pool.defer_to_thread_burst_per_s.peer.twisted  the same N submitted at once
    pool.round_trip_per_s.peer.twisted             N/2 callInThread whose function calls
                                                   callFromThread back, all at once
    pool.rtt_p50_us.peer.twisted, _p99_us          one at a time: callInThread, callFromThread
                                                   back, the next from there

N is 50,000 (5,000 with BENCH_QUICK=1): Python's per-task cost does not depend on N and a million
would take minutes per run; 5,000 one-at-a-time round trips (500 quick). The garbage collector is
off while the clock runs, as timeit does.
"""

import gc
import os
import statistics
import sys
import time

from twisted.internet import reactor, threads

REPS = 5
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


def report(name, runs, unit):
    runs = sorted(runs)
    print(f"BENCH {name}.peer.twisted {fmt(statistics.median(runs))} {unit}")
    print(f"#   {name}.peer.twisted: median of {len(runs)} runs, "
          f"min {fmt(runs[0])} max {fmt(runs[-1])}")
    sys.stdout.flush()


def trivial():
    return 1


class Bench:
    """Each workload runs to completion, then calls self.next_step() to start the next one."""

    def __init__(self, n, pings):
        self.n = n
        self.pings = pings
        self.results = {"rate": [], "burst": [], "trips": [], "p50": [], "p99": []}
        self.steps = []
        for _ in range(REPS):
            self.steps += [self.defers_windowed, self.defers_burst, self.round_trips, self.latency]

    def next_step(self):
        gc.enable()
        if not self.steps:
            reactor.stop()
            return
        step = self.steps.pop(0)
        gc.collect()
        gc.disable()
        reactor.callLater(0, step)

    # --- defer_to_thread ---
    def defers(self, window, key):
        self.done = 0
        self.submitted = 0
        self.key = key
        self.t0 = time.perf_counter()
        self.submit(min(window, self.n))

    def submit(self, k):
        for _ in range(k):
            self.submitted += 1
            threads.deferToThread(trivial).addCallback(self.on_result)

    def on_result(self, value):
        self.done += value
        if self.done == self.n:
            self.results[self.key].append(self.n / (time.perf_counter() - self.t0))
            self.next_step()
        elif self.submitted < self.n:
            self.submit(1)

    def defers_windowed(self):
        self.defers(WINDOW, "rate")

    def defers_burst(self):
        self.defers(self.n, "burst")

    # --- round trips, all at once ---
    def round_trips(self):
        self.trips = self.n // 2
        self.back = 0
        self.t0 = time.perf_counter()
        for _ in range(self.trips):
            reactor.callInThread(reactor.callFromThread, self.on_back)

    def on_back(self):
        self.back += 1
        if self.back == self.trips:
            self.results["trips"].append(self.trips / (time.perf_counter() - self.t0))
            self.next_step()

    # --- one at a time ---
    def latency(self):
        self.samples = []
        self.ping()

    def ping(self):
        self.t0 = time.perf_counter()
        reactor.callInThread(reactor.callFromThread, self.pong)

    def pong(self):
        self.samples.append((time.perf_counter() - self.t0) * 1e6)
        if len(self.samples) == self.pings:
            s = sorted(self.samples)
            self.results["p50"].append(statistics.median(s))
            self.results["p99"].append(s[min(len(s) - 1, int(0.99 * (len(s) - 1) + 0.5))])
            self.next_step()
        else:
            self.ping()


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = 5_000 if quick else 50_000
    pings = 500 if quick else 5_000
    import twisted
    print(f"# Twisted {twisted.__version__} reactor thread pool of 4: {n} deferToThread "
          f"({WINDOW} in flight, then all at once), {n // 2} round trips at once, "
          f"{pings} one at a time")
    reactor.suggestThreadPoolSize(4)
    bench = Bench(n, pings)
    reactor.callWhenRunning(bench.next_step)
    reactor.run()
    r = bench.results
    report("pool.defer_to_thread_per_s", r["rate"], "tasks/s")
    report("pool.defer_to_thread_burst_per_s", r["burst"], "tasks/s")
    report("pool.round_trip_per_s", r["trips"], "trips/s")
    report("pool.rtt_p50_us", r["p50"], "us")
    report("pool.rtt_p99_us", r["p99"], "us")


if __name__ == "__main__":
    main()
