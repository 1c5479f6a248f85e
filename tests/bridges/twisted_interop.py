"""tests/bridges/twisted_interop.py - ztwist's TCP bridge against Twisted, and under abuse.

Run by ctest with /usr/bin/python3 (the interpreter that has Twisted):

    twisted_interop.py ACK_SERVER ACK_LOAD TWISTED_ACK_SERVER_PY [--sanitized]

(--sanitized: the programs are built with a sanitizer, whose allocator keeps freed memory in
quarantine: the memory checks are skipped, the fd checks stay. Exit status 77, a skip for ctest,
when Twisted cannot be imported.)

1. Twisted's LineReceiver client talks to examples/ack_server (--mode thread and --mode defer):
   pipelined lines on several connections, every reply checked; a 1 MiB line without a delimiter
   closes only its own connection.
2. Faults, with plain sockets: clients that disconnect mid-request (the server drops the late
   replies), 10,000 connect/disconnect cycles (the server's fd count and memory do not grow), a
   client that sends without reading (the server's memory stays bounded), while another client
   is served throughout.
3. ztwist's client (examples/ack_load) talks to Twisted's server (bench/peers/twisted_ack_server.py).

Every server is started here on 127.0.0.1 port 0; the test waits for its "listening on" line (no
sleeps) and stops it with SIGTERM, checking that it exits cleanly. Nothing is left running.
"""
import os
import signal
import socket
import subprocess
import sys

ACK_SERVER, ACK_LOAD, TWISTED_SERVER = sys.argv[1:4]
SANITIZED = "--sanitized" in sys.argv[4:]
try:
    import twisted  # noqa: F401
except ImportError:
    print("skipped: Twisted cannot be imported by %s" % sys.executable)
    sys.exit(77)
PYTHON = "/usr/bin/python3"
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


class Server:
    """A server process started on port 0; port is read from its first line."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError("server did not start: %r %r" % (line, self.proc.stderr.read()))
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            return -9, err
        if self.proc.returncode != 0:
            print("server exited with %d; its stderr ends with:\n%s"
                  % (self.proc.returncode, err[-3000:]), flush=True)
        return self.proc.returncode, err

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1


def request(port, line, sock=None):
    """One request-response on a plain socket; returns the reply line."""
    own = sock is None
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(line + b"\r\n")
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    if own:
        s.close()
    return buf


# --- 1. Twisted's LineReceiver client --------------------------------------------------------

def twisted_clients(ports):
    from twisted.internet import defer, protocol, reactor
    from twisted.protocols import basic

    class Client(basic.LineReceiver):
        def __init__(self, lines):
            self.lines = lines
            self.replies = []
            self.done = defer.Deferred()

        def connectionMade(self):
            for line in self.lines:
                self.sendLine(line)

        def lineReceived(self, line):
            self.replies.append(line)
            if len(self.replies) == len(self.lines):
                self.transport.loseConnection()

        def connectionLost(self, reason):
            self.done.callback(self.replies)

    class Flood(protocol.Protocol):
        """Sends 1 MiB without a delimiter and waits to be disconnected."""

        def __init__(self):
            self.done = defer.Deferred()

        def connectionMade(self):
            self.transport.write(b"x" * (1 << 20))

        def connectionLost(self, reason):
            self.done.callback(True)

    def connect(port, proto):
        return protocol.ClientCreator(reactor, lambda: proto).connectTCP("127.0.0.1", port)

    @defer.inlineCallbacks
    def run():
        try:
            for mode, port in ports:
                clients = []
                for c in range(5):
                    lines = [b"%d-%d" % (c, i) for i in range(50)]
                    client = Client(lines)
                    yield connect(port, client)
                    clients.append((lines, client))
                for lines, client in clients:
                    replies = yield client.done
                    check(sorted(replies) == sorted(b"ack:" + l for l in lines),
                          "%s: Twisted LineReceiver client got all 50 acks" % mode)
                flood = Flood()
                yield connect(port, flood)
                yield flood.done
                check(True, "%s: a 1 MiB line without a delimiter closed its connection" % mode)
                client = Client([b"after the flood"])
                yield connect(port, client)
                replies = yield client.done
                check(replies == [b"ack:after the flood"],
                      "%s: the server still serves other clients" % mode)
        except Exception as e:  # reported as a failure, then the reactor stops
            check(False, "Twisted client: %r" % (e,))
        finally:
            reactor.stop()

    reactor.callWhenRunning(run)
    reactor.run()


# --- 2. faults with plain sockets --------------------------------------------------------------

def mid_request_disconnects(mode):
    server = Server([ACK_SERVER, "--port", "0", "--mode", mode, "--threads", "4", "--work-ms",
                     "20"])
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"going away\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset, before the reply is ready
    check(request(server.port, b"still here") == b"ack:still here\r\n",
          "%s: served after 20 mid-request disconnects" % mode)
    rc, err = server.stop()
    check(rc == 0, "%s: ack_server exits 0 on SIGTERM (rc %s)" % (mode, rc))
    check("dropped" in err and " 0 dropped" not in err,
          "%s: late replies were dropped: %s" % (mode, err.strip().splitlines()[-1:]))


def connect_disconnect_cycles():
    server = Server([ACK_SERVER, "--port", "0", "--mode", "defer", "--threads", "4"])
    keep = socket.create_connection(("127.0.0.1", server.port))

    def cycles(n):
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.close()
        # A round trip on the kept connection: the server has handled the closes before it.
        check(request(server.port, b"sync", keep) == b"ack:sync\r\n", "served during cycles")

    cycles(1000)  # warm-up: the allocator's and the kernel's caches
    fds0, rss0 = server.fds(), server.rss_kb()
    cycles(10000)
    # The sync's reply can leave before the server has seen the last closes: a connection accepted
    # in the sync's pass has its EOF read in a later one. Each further round trip is at least one
    # more pass; a real leak stays after all of them.
    for _ in range(200):
        if server.fds() == fds0:
            break
        request(server.port, b"sync", keep)
    fds1, rss1 = server.fds(), server.rss_kb()
    check(fds1 == fds0, "10,000 connect/disconnect cycles: fds %d -> %d" % (fds0, fds1))
    check(SANITIZED or rss1 - rss0 < 2048, "10,000 cycles: RSS %d -> %d KiB" % (rss0, rss1))
    keep.close()
    rc, _ = server.stop()
    check(rc == 0, "ack_server exits 0 after the cycles")


def slow_reader():
    server = Server([ACK_SERVER, "--port", "0", "--mode", "defer", "--threads", "4"])
    other = socket.create_connection(("127.0.0.1", server.port))
    rss0 = server.rss_kb()
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setblocking(False)
    chunk = b"".join(b"request %06d\r\n" % i for i in range(4096))
    sent = 0
    # Send without reading until the kernel refuses (the server stopped reading from us) or
    # 64 MiB went in, checking meanwhile that the other client is served.
    while sent < (64 << 20):
        try:
            sent += slow.send(chunk)
        except BlockingIOError:
            # Refused: give the server a round trip to catch up, then try once more.
            check(request(server.port, b"other", other) == b"ack:other\r\n",
                  "another client is served while one reads nothing")
            try:
                sent += slow.send(chunk)
            except BlockingIOError:
                break
    rss1 = server.rss_kb()
    check(sent < (64 << 20), "the server stopped reading from a client that reads nothing "
          "(%d KiB taken)" % (sent >> 10))
    check(SANITIZED or rss1 - rss0 < 16 * 1024,
          "slow reader: server RSS %d -> %d KiB" % (rss0, rss1))
    slow.close()
    other.close()
    rc, _ = server.stop()
    check(rc == 0, "ack_server exits 0 after the slow reader")


# --- 3. ztwist's client against Twisted's server --------------------------------------------

def ztwist_client_twisted_server():
    server = Server([PYTHON, TWISTED_SERVER, "--port", "0", "--threads", "4"])
    for window in ("1", "8"):
        out = subprocess.run([ACK_LOAD, "--port", str(server.port), "--connections", "4",
                              "--lines", "200", "--window", window, "--timeout", "60"],
                             capture_output=True, text=True, timeout=90)
        check(out.returncode == 0 and "requests 800 errors 0" in out.stdout,
              "ack_load K=%s against Twisted's server: %s %s" % (window, out.stdout.strip(),
                                                                  out.stderr.strip()))
    rc, _ = server.stop()
    check(rc == 0, "Twisted's server exits 0 on SIGTERM")


def main():
    servers = [("thread", Server([ACK_SERVER, "--port", "0", "--mode", "thread"])),
               ("defer", Server([ACK_SERVER, "--port", "0", "--mode", "defer"]))]
    try:
        twisted_clients([(mode, s.port) for mode, s in servers])
    finally:
        for mode, s in servers:
            rc, _ = s.stop()
            check(rc == 0, "%s: ack_server exits 0 on SIGTERM" % mode)
    for mode in ("thread", "defer"):
        mid_request_disconnects(mode)
    connect_disconnect_cycles()
    slow_reader()
    ztwist_client_twisted_server()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
