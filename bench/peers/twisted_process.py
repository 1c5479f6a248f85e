"""bench/peers/twisted_process.py - the peer of bench_process: spawning /bin/true on Twisted's reactor.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints the median of 5 runs, all inside one
reactor.run():

    process.spawns_per_s.peer.twisted   spawnProcess /bin/true, wait for processEnded (exit code checked),
                                        spawn the next; N children (200; 20 with BENCH_QUICK=1)
"""

import os
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


def main():
    try:
        import twisted
        from twisted.internet import error, reactor
        from twisted.internet.protocol import ProcessProtocol
    except ImportError as e:
        print(f"# skipped: twisted_process: Twisted is not importable by {sys.executable}: {e}")
        return 0
    n = 20 if os.environ.get("BENCH_QUICK") == "1" else 200
    print(f"# Twisted {twisted.__version__} {type(reactor).__name__}: N = {n} children of /bin/true, one at a time")
    runs = []
    state = {"left": 0, "t0": 0.0, "failed": False}

    class Child(ProcessProtocol):
        def processEnded(self, reason):
            if not reason.check(error.ProcessDone):
                state["failed"] = True
                reactor.stop()
                return
            state["left"] -= 1
            if state["left"] > 0:
                spawn()
                return
            runs.append(n / (time.perf_counter() - state["t0"]))
            if len(runs) < REPS:
                reactor.callLater(0, start_rep)
            else:
                reactor.stop()

    def spawn():
        reactor.spawnProcess(Child(), "/bin/true", ["true"], env=None)

    def start_rep():
        state["left"] = n
        state["t0"] = time.perf_counter()
        spawn()

    reactor.callWhenRunning(start_rep)
    reactor.run()
    if state["failed"] or len(runs) != REPS:
        print("twisted_process: a child failed or the reactor stopped early", file=sys.stderr)
        return 1
    runs.sort()
    print(f"BENCH process.spawns_per_s.peer.twisted {fmt(statistics.median(runs))} spawns/s")
    print(f"#   process.spawns_per_s.peer.twisted: median of {REPS} runs, min {fmt(runs[0])} max {fmt(runs[-1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
