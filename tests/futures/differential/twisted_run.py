"""Twisted half of the Deferred differential test (tests/futures/differential).

    twisted_run.py gen SEED    print a random op script (the format is described in interp.c)
    twisted_run.py run FILE    run the script against Twisted's Deferred and print the log

interp.c runs the same script against ztwist and must print the same log. Two known differences,
both forced by C and documented in <ztwist/deferred.h>, are kept out of the comparison, and only
these two:

1. A `wait` whose target Deferred is running one of its own callbacks (reachable through `chain`,
   whose link fires another Deferred from inside the target's runner): Twisted takes the value
   being worked on, ztwist gets no value (None) since a result has one owner. Exactly in that case
   (Twisted's own `_runningCallbacks` flag on the target) the Twisted side returns None, as ztwist
   does, instead of the target.
2. A Failure held by a Deferred that is still paused when its last reference goes: ztwist reports it
   unhandled, Twisted does not. gen() ends every script by unpausing each Deferred as many times as
   the script paused it, so no Deferred is left paused by the script at the end.

Must run under /usr/bin/python3, which has Twisted.
"""
import gc
import random
import sys

from twisted.internet import task
from twisted.internet.defer import AlreadyCalledError, CancelledError, Deferred, TimeoutError
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure


class Error(Exception):
    """The plain error the scripts fail with (ztwist's ZT_ERROR)."""


NAMES = {Error: "Error", CancelledError: "CancelledError", TimeoutError: "TimeoutError"}


def type_name(failure):
    return NAMES.get(failure.type, failure.type.__name__)


def run(script):
    """Run the script's lines, return the log as a list of lines."""
    out = []
    unhandled = []

    def observer(event):
        if "log_failure" in event:
            unhandled.append(event)

    globalLogPublisher.addObserver(observer)
    deferreds = {}
    clock = task.Clock()

    def note(name, result):
        if isinstance(result, Failure):
            out.append("%s:!%s" % (name, type_name(result)))
        else:
            out.append("%s:%d" % (name, result or 0))

    def add_one(name):
        def f(result):
            note(name, result)
            return (result or 0) + 1
        return f

    def recover(name):
        def f(result):
            note(name, result)
            return 100
        return f

    def fail(name):
        def f(result):
            note(name, result)
            return Failure(Error("x"))
        return f

    def pass_on(name):
        def f(result):
            note(name, result)
            return result
        return f

    def wait(name, j):
        def f(result):
            note(name, result)
            target = deferreds[j]
            if target._runningCallbacks:  # difference 1, see the module docstring
                return None
            return target
        return f

    def canceller(i):
        def f(d):
            out.append("canceller d%d" % i)
        return f

    for line in script:
        p = line.split()
        if not p:
            continue
        op = p[0]
        if op == "new":
            i = int(p[1])
            deferreds[i] = Deferred(canceller(i)) if int(p[2]) else Deferred()
            continue
        d = deferreds.get(int(p[1])) if op != "advance" else None
        if op == "cb":
            d.addCallback(add_one(p[2]))
        elif op == "eb":
            d.addErrback(recover(p[2]))
        elif op == "fcb":
            d.addCallback(fail(p[2]))
        elif op == "both":
            d.addBoth(pass_on(p[2]))
        elif op == "pair":
            d.addCallbacks(fail(p[2]), recover(p[2]))
        elif op == "wait":
            d.addCallback(wait(p[3], int(p[2])))
        elif op == "ewait":
            d.addErrback(wait(p[3], int(p[2])))
        elif op in ("fire", "fail"):
            try:
                if op == "fire":
                    d.callback(int(p[2]))
                else:
                    d.errback(Failure(Error("f")))
                out.append("%s %s ok" % (op, p[1]))
            except AlreadyCalledError:
                out.append("%s %s already" % (op, p[1]))
        elif op == "pause":
            d.pause()
        elif op == "unpause":
            d.unpause()
        elif op == "cancel":
            d.cancel()
        elif op == "chain":
            d.chainDeferred(deferreds[int(p[2])])
        elif op == "timeout":
            d.addTimeout(float(p[2]), clock)
        elif op == "advance":
            clock.advance(float(p[1]))
        else:
            raise ValueError("bad op: %r" % line)
    for i in sorted(deferreds):
        d = deferreds[i]
        if not d.called:
            out.append("final %d uncalled" % i)
        elif isinstance(d.result, Deferred):
            out.append("final %d waiting" % i)
        elif isinstance(d.result, Failure):
            out.append("final %d !%s" % (i, type_name(d.result)))
        else:
            out.append("final %d %d" % (i, d.result or 0))
    d = None
    deferreds.clear()
    clock.calls[:] = []
    gc.collect()
    gc.collect()
    globalLogPublisher.removeObserver(observer)
    out.append("unhandled %d" % len(unhandled))
    return out


OPS = ["cb", "eb", "fcb", "both", "pair", "wait", "ewait", "fire", "fire", "fail", "pause",
       "unpause", "cancel", "chain", "timeout", "advance"]


def gen(rng):
    """A random script: 2 to 5 Deferreds, 5 to 30 ops, then time runs out and pauses are undone."""
    n = rng.randint(2, 5)
    lines = ["new %d %d" % (i, rng.random() < 0.3) for i in range(n)]
    paused = [0] * n
    for k in range(rng.randint(5, 30)):
        i = rng.randrange(n)
        j = rng.randrange(n)
        op = rng.choice(OPS)
        name = "l%d" % k
        if op in ("cb", "eb", "fcb", "both", "pair"):
            lines.append("%s %d %s" % (op, i, name))
        elif op in ("wait", "ewait"):
            if i != j:
                lines.append("%s %d %d %s" % (op, i, j, name))
        elif op == "chain":
            if i != j:
                lines.append("chain %d %d" % (i, j))
        elif op == "fire":
            lines.append("fire %d %d" % (i, rng.randint(0, 9) * 10))
        elif op == "fail":
            lines.append("fail %d" % i)
        elif op == "pause":
            lines.append("pause %d" % i)
            paused[i] += 1
        elif op == "unpause":
            if paused[i]:
                lines.append("unpause %d" % i)
                paused[i] -= 1
        elif op == "cancel":
            lines.append("cancel %d" % i)
        elif op == "timeout":
            lines.append("timeout %d %d" % (i, rng.randint(1, 5)))
        elif op == "advance":
            lines.append("advance %d" % rng.randint(1, 3))
    lines.append("advance 100")
    for i in range(n):  # difference 2, see the module docstring
        lines.extend(["unpause %d" % i] * paused[i])
    return lines


def main(argv):
    if len(argv) == 3 and argv[1] == "gen":
        print("\n".join(gen(random.Random(int(argv[2])))))
    elif len(argv) == 3 and argv[1] == "run":
        with open(argv[2]) as f:
            print("\n".join(run(f.read().splitlines())))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
