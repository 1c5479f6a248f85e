"""tests/bridges/guide_interop.py - ztwist's Majordomo broker with a worker and a client of another
make: written here from RFC 7 (MDP/0.1) with pyzmq, in the style of the ZeroMQ guide's worker API.

Run by ctest with /usr/bin/python3 (the interpreter that has pyzmq):

    guide_interop.py ZTWIST_BROKER ECHO_WORKER REMOTE_CLIENT

(exit status 77, a skip for ctest, when pyzmq cannot be imported.)

1. This file's worker, which keeps exactly one address frame from a REQUEST and expects the empty
   delimiter after it (as the guide's mdwrkapi does), serves ztwist's client (examples/
   remote_client, which first waits for the service with zt_remote_wait_for_service).
2. This file's client (a DEALER sending [""][MDPC01][service][body...]) is served by ztwist's
   worker (examples/echo_worker), after asking mmi.service (RFC 8) until the worker is there.

The broker is ztwist-broker on 127.0.0.1 port 0; the test reads its "listening on" line (no
sleeps) and stops every process it started with SIGTERM, by pid, checking that each exits cleanly.
"""
import subprocess
import sys
import time

try:
    import zmq
except ImportError:
    print("skipped: pyzmq cannot be imported by %s" % sys.executable)
    sys.exit(77)

BROKER, ECHO_WORKER, REMOTE_CLIENT = sys.argv[1:4]
HEARTBEAT = 0.25  # seconds, the broker's and the workers'
LIVENESS = 3

# RFC 7's constants.
CLIENT = b"MDPC01"
WORKER = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT_CMD, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class RfcWorker:
    """A Majordomo worker written from RFC 7: a DEALER that announces its service with READY,
    heartbeats the broker, and answers each REQUEST [""][MDPW01][0x02][address][""][body...] with
    REPLY [""][MDPW01][0x03][address][""][body...]. Like the guide's worker API it keeps one address
    frame; a REQUEST whose fifth frame is not empty breaks that contract and is counted."""

    def __init__(self, ctx, endpoint, service):
        self.ctx, self.endpoint, self.service = ctx, endpoint, service
        self.served = 0
        self.broken = []  # the layouts that broke the one-address-frame contract
        self.socket = None
        self.connect()

    def connect(self):
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(self.endpoint)
        self.send(READY, [self.service])
        self.broker_expires = time.monotonic() + HEARTBEAT * LIVENESS
        self.next_heartbeat = time.monotonic() + HEARTBEAT

    def send(self, command, rest=()):
        self.socket.send_multipart([b"", WORKER, command] + list(rest))

    def on_message(self, frames):
        self.broker_expires = time.monotonic() + HEARTBEAT * LIVENESS
        if len(frames) < 3 or frames[0] != b"" or frames[1] != WORKER:
            self.broken.append(frames)
            return
        command = frames[2]
        if command == REQUEST:
            if len(frames) < 5 or frames[4] != b"":
                self.broken.append(frames)
                return
            address, body = frames[3], frames[5:]
            self.send(REPLY, [address, b""] + body)
            self.served += 1
        elif command == DISCONNECT:
            self.connect()
        # HEARTBEAT: the broker is alive, noted above.

    def poll_once(self, timeout):
        if self.socket.poll(int(timeout * 1000)):
            self.on_message(self.socket.recv_multipart())
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.send(HEARTBEAT_CMD)
            self.next_heartbeat = now + HEARTBEAT
        if now > self.broker_expires:
            self.connect()  # the broker fell silent: announce ourselves again

    def close(self):
        self.send(DISCONNECT)
        self.socket.close(linger=0)


class RfcClient:
    """A Majordomo client written from RFC 7: a DEALER that sends [""][MDPC01][service][body...]
    and reads the reply [""][MDPC01][service][body...]."""

    def __init__(self, ctx, endpoint):
        self.socket = ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(endpoint)

    def request(self, service, body, timeout=10.0):
        self.socket.send_multipart([b"", CLIENT, service] + body)
        if not self.socket.poll(int(timeout * 1000)):
            return None
        frames = self.socket.recv_multipart()
        if len(frames) < 3 or frames[0] != b"" or frames[1] != CLIENT or frames[2] != service:
            raise AssertionError("malformed reply %r" % frames)
        return frames[3:]

    def wait_for_service(self, service, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request(b"mmi.service", [service], timeout=2.0) == [b"200"]:
                return True
            self.socket.poll(100)  # ask again a little later (nothing else arrives here)
        return False

    def close(self):
        self.socket.close(linger=0)


def start_broker():
    broker = subprocess.Popen(
        [BROKER, "--bind", "tcp://127.0.0.1:0", "--heartbeat-ms", str(int(HEARTBEAT * 1000))],
        stdout=subprocess.PIPE, text=True)
    line = broker.stdout.readline()
    prefix = "ztwist-broker: listening on "
    if not line.startswith(prefix):
        broker.kill()
        raise SystemExit("ztwist-broker did not start: %r" % line)
    return broker, line[len(prefix):].strip()


def stop(process, name):
    if process.poll() is None:
        process.terminate()
    try:
        rc = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        rc = "killed"
    check(rc == 0, "%s exits cleanly on SIGTERM (status %s)" % (name, rc))


def rfc_worker_serves_ztwist_client(ctx, endpoint):
    worker = RfcWorker(ctx, endpoint, b"rfc-echo")
    client = subprocess.Popen(
        [REMOTE_CLIENT, "--broker", endpoint, "--service", "rfc-echo", "--requests", "200",
         "--inflight", "8", "--size", "100", "--wait", "--quiet"],
        stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while client.poll() is None and time.monotonic() < deadline:
        worker.poll_once(0.02)
    if client.poll() is None:
        client.kill()
    out = client.communicate()[0]
    worker.close()
    check(client.returncode == 0, "ztwist's client finished (status %s)" % client.returncode)
    check("200 requests, 200 replies, 0 failures" in out,
          "ztwist's client got every reply from the RFC 7 worker: %s" % out.strip())
    check(worker.served == 200, "the RFC 7 worker served 200 requests (%d)" % worker.served)
    check(not worker.broken,
          "every REQUEST had one address frame and then the empty delimiter (%d did not%s)"
          % (len(worker.broken), ": %r" % worker.broken[0] if worker.broken else ""))


def ztwist_worker_serves_rfc_client(ctx, endpoint):
    worker = subprocess.Popen(
        [ECHO_WORKER, "--broker", endpoint, "--service", "zt-echo", "--heartbeat-ms",
         str(int(HEARTBEAT * 1000))], stderr=subprocess.DEVNULL)
    client = RfcClient(ctx, endpoint)
    try:
        check(client.wait_for_service(b"zt-echo", 30), "mmi.service says ztwist's worker is there")
        good = 0
        for i in range(100):
            body = [b"request %d" % i, b"", b"x" * (i % 7)]  # several frames, one of them empty
            if client.request(b"zt-echo", body) == body:
                good += 1
        check(good == 100, "the RFC 7 client got 100 echoes from ztwist's worker (%d)" % good)
        check(client.request(b"nobody", [b"hi"])[:2] == [b"ztwist.error", b"404"],
              "an unknown service gets the broker's 404 error reply, naming that service")
    finally:
        client.close()
        stop(worker, "echo_worker")


def main():
    broker, endpoint = start_broker()
    ctx = zmq.Context()
    try:
        rfc_worker_serves_ztwist_client(ctx, endpoint)
        ztwist_worker_serves_rfc_client(ctx, endpoint)
    finally:
        ctx.destroy(linger=0)
        stop(broker, "ztwist-broker")
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
