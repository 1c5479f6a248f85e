"""bench/peers/twisted_timers.py - the reactor's timer workloads on Twisted's reactor.callLater.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints, as peers of the reactor's
figures, the median of 5 runs, all inside one reactor.run() (a Twisted reactor cannot restart):

    reactor.call_later_ns.peer.twisted         ns per callLater, delays drawn from [0, 0.1] s
    reactor.call_later_run_s.peer.twisted      s from the first callLater until the last call ran
    reactor.call_later_cancel_ns.peer.twisted  ns per pair: callLater N times, then cancel all N

N is 1,000,000 calls (10,000 with BENCH_QUICK=1). The delays come from a fixed seed and are drawn
before the clock starts. The garbage collector is off while the clock runs, as timeit does.
"""

import gc
import os
import random
import statistics
import sys
import time

REPS = 5


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


class TimerBench:
    """Runs the repetitions one after another from reactor callbacks, then stops the reactor."""

    def __init__(self, reactor, n):
        self.reactor = reactor
        self.n = n
        rng = random.Random(0x5EED)
        self.delays = [rng.uniform(0.0, 0.1) for _ in range(n)]
        self.schedule_ns = []
        self.run_s = []
        self.cancel_ns = []
        self.fired = 0
        self.started = 0
        self.last_fired = 0

    def on_fire(self):
        self.fired += 1
        if self.fired == self.n:
            self.last_fired = time.perf_counter_ns()
            self.reactor.callLater(0, self.after_run)

    def start_rep(self):
        gc.collect()
        gc.disable()
        self.fired = 0
        call_later, on_fire = self.reactor.callLater, self.on_fire
        self.started = time.perf_counter_ns()
        for delay in self.delays:
            call_later(delay, on_fire)
        self.schedule_ns.append((time.perf_counter_ns() - self.started) / self.n)

    def after_run(self):
        self.run_s.append((self.last_fired - self.started) / 1e9)
        call_later, on_fire = self.reactor.callLater, self.on_fire
        t0 = time.perf_counter_ns()
        calls = [call_later(delay, on_fire) for delay in self.delays]
        for call in calls:
            call.cancel()
        self.cancel_ns.append((time.perf_counter_ns() - t0) / self.n)
        del calls
        gc.enable()
        if len(self.run_s) < REPS:
            self.reactor.callLater(0, self.start_rep)
        else:
            self.reactor.stop()


def main():
    try:
        import twisted
        from twisted.internet import reactor
    except ImportError as e:
        print(f"# skipped: twisted_timers: Twisted is not importable by {sys.executable}: {e}")
        return 0
    n = 10_000 if os.environ.get("BENCH_QUICK") == "1" else 1_000_000
    print(f"# Twisted {twisted.__version__} {type(reactor).__name__}: N = {n} calls, "
          f"delays in [0, 0.1] s")
    sys.stdout.flush()
    bench = TimerBench(reactor, n)
    reactor.callWhenRunning(bench.start_rep)
    reactor.run()
    if len(bench.run_s) != REPS:
        print("twisted_timers: the reactor stopped early", file=sys.stderr)
        return 1
    report("reactor.call_later_ns", bench.schedule_ns, "ns")
    report("reactor.call_later_run_s", bench.run_s, "s")
    report("reactor.call_later_cancel_ns", bench.cancel_ns, "ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
