"""bench/peers/twisted_ack_server.py - Twisted's peer of examples/ack_server (--mode defer).

A LineReceiver whose every line is answered "ack:<line>\\r\\n" from a deferToThread callback, on a
reactor thread pool of 4 threads (or --threads N), with TCP_NODELAY set as ack_server does. The
first line of output is "listening on HOST:PORT" (the real port when given 0); SIGINT or SIGTERM
stops it cleanly.

bench/bench_tcp runs it (with /usr/bin/python3) under the same ack_load client as ack_server and
prints its figures with the `.peer.twisted` suffix. bench/run.sh also runs every peers/*.py with no
arguments; without --port this file only says where its figures come from and exits.

usage: /usr/bin/python3 twisted_ack_server.py [--host H] --port P [--threads N] [--work-ms W]
"""
import argparse
import sys
import time

from twisted.internet import protocol, reactor, threads
from twisted.protocols import basic


class Ack(basic.LineReceiver):
    work_ms = 0

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def lineReceived(self, line):
        d = threads.deferToThread(self.work, line)
        d.addCallback(self.reply)

    def work(self, line):
        if self.work_ms > 0:
            time.sleep(self.work_ms / 1000.0)  # stands for blocking work
        return b"ack:" + line

    def reply(self, answer):
        if self.transport is not None and self.transport.connected:
            self.sendLine(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--work-ms", type=int, default=0)
    args = parser.parse_args()
    if args.port is None:
        print("# twisted_ack_server: a server, measured by bench_tcp under ack_load "
              "(BENCH tcp.*.peer.twisted)")
        return 0
    Ack.work_ms = args.work_ms
    factory = protocol.Factory.forProtocol(Ack)
    reactor.suggestThreadPoolSize(args.threads)
    port = reactor.listenTCP(args.port, factory, backlog=128, interface=args.host)
    host = port.getHost()
    print("listening on %s:%d" % (host.host, host.port), flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
