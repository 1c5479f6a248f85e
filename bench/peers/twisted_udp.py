"""bench/peers/twisted_udp.py - the peer of bench_udp: UDP round trips through two ports of one reactor.

Run with /usr/bin/python3 (the interpreter that has Twisted). Prints the median of 5 runs, all inside one
reactor.run():

    udp.round_trips_per_s.peer.twisted   a client port sends a 64-byte datagram to an echo port on 127.0.0.1,
                                         which sends it back; the next leaves when the echo arrives

N is 20,000 round trips (2,000 with BENCH_QUICK=1): Python's cost per round trip does not depend on N.
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
        from twisted.internet import reactor
        from twisted.internet.protocol import DatagramProtocol
    except ImportError as e:
        print(f"# skipped: twisted_udp: Twisted is not importable by {sys.executable}: {e}")
        return 0
    n = 2_000 if os.environ.get("BENCH_QUICK") == "1" else 20_000
    print(f"# Twisted {twisted.__version__} {type(reactor).__name__}: N = {n} round trips of 64 bytes")
    runs = []

    class Echo(DatagramProtocol):
        def datagramReceived(self, data, addr):
            self.transport.write(data, addr)

    class Client(DatagramProtocol):
        def __init__(self):
            self.left = 0
            self.t0 = 0.0

        def start_rep(self):
            self.left = n
            self.t0 = time.perf_counter()
            self.transport.write(b"\0" * 64, ("127.0.0.1", echo_port))

        def datagramReceived(self, data, addr):
            self.left -= 1
            if self.left > 0:
                self.transport.write(data, addr)
                return
            runs.append(n / (time.perf_counter() - self.t0))
            if len(runs) < REPS:
                reactor.callLater(0, self.start_rep)
            else:
                reactor.stop()

    echo = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
    echo_port = echo.getHost().port
    client = Client()
    reactor.listenUDP(0, client, interface="127.0.0.1")
    reactor.callWhenRunning(client.start_rep)
    reactor.run()
    if len(runs) != REPS:
        print("twisted_udp: the reactor stopped early", file=sys.stderr)
        return 1
    runs.sort()
    print(f"BENCH udp.round_trips_per_s.peer.twisted {fmt(statistics.median(runs))} round_trips/s")
    print(f"#   udp.round_trips_per_s.peer.twisted: median of {REPS} runs, min {fmt(runs[0])} max {fmt(runs[-1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
