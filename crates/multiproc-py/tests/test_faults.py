"""The traps CPython's manager falls into, each with real processes and real signals: Ctrl-C
during a wait, a manager killed under its clients. (A lock holder SIGKILLed and the starter
SIGKILLed: test_manager.py.)"""
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

import multiproc
from multiproc import ManagerGone, SyncManager

DEADLINE = 30
KEY = b"the faults' key"

WAITER = """
import sys, time
import multiproc
m = multiproc.connect(sys.argv[1], sys.argv[2].encode())
barrier = m.Barrier(2, name="b")
try:
    barrier.wait()
    print("passed", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
# The manager is still there for this process, and the wait took nothing.
print("broken" if m.Barrier(2, name="b").broken else "whole", flush=True)
"""


def test_ctrl_c_interrupts_a_wait_and_the_proxy_goes_on():
    with SyncManager(authkey=KEY) as m:
        barrier = m.Barrier(2, name="b")
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, m.address, KEY.decode()],
                                  stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + DEADLINE
            while barrier.n_waiting != 1:  # the waiter is in its wait, on the server
                assert time.monotonic() < deadline and waiter.poll() is None
                time.sleep(0.005)
            sent = time.monotonic()
            waiter.send_signal(signal.SIGINT)
            assert waiter.stdout.readline() == "interrupted\n"
            latency = time.monotonic() - sent
            # A waiter that left breaks the barrier for the others, as one that timed out.
            assert waiter.stdout.readline() in ("broken\n", "whole\n")
            assert waiter.wait(DEADLINE) == 0
            print(f"Ctrl-C ended the wait in {latency * 1000:.0f} ms")
            assert barrier.n_waiting == 0
        finally:
            waiter.kill()


def _get_forever(q, ready, out):
    ready.set()
    try:
        q.get()
        out.put("got")
    except ManagerGone as gone:
        out.put(f"gone: {gone}")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_killed_manager_is_manager_gone_for_every_call_and_none_hangs(method):
    ctx = multiprocessing.get_context(method)
    m = SyncManager(ctx=ctx).start()
    q, d, lock = m.Queue(), m.dict(), m.Lock()
    ready, out = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_get_forever, args=(q, ready, out))
    child.start()
    assert ready.wait(DEADLINE)
    os.kill(m._process.pid, signal.SIGKILL)
    m._process.join(DEADLINE)
    killed = time.monotonic()
    # The child blocked in get() hears it; so does every call here, at once.
    assert out.get(timeout=DEADLINE).startswith("gone: ")
    heard = time.monotonic() - killed
    for call in (lambda: d.__setitem__("k", 1), lambda: q.put(1), lock.acquire,
                 lambda: m.dict(), lambda: len(d)):
        started = time.monotonic()
        with pytest.raises(ManagerGone):
            call()
        assert time.monotonic() - started < 5
    child.join(DEADLINE)
    assert child.exitcode == 0
    print(f"the blocked child heard the manager die after {heard * 1000:.0f} ms")
    m.shutdown()  # of a dead server: returns, raises nothing
