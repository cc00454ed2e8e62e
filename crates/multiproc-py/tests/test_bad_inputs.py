"""Each bad input of the design study's list gets Python's exception, or a typed one where
CPython hangs or loses data, and leaves the manager serving."""
import datetime
import multiprocessing
import pickle
import queue

import pytest

import multiproc
from multiproc import Manager, ManagerGone, SyncManager


@pytest.fixture(scope="module")
def m():
    with Manager() as manager:
        yield manager


@pytest.mark.parametrize("value", [{1, 2}, object(), datetime.date(2026, 12, 1), 1j])
def test_a_value_of_another_type_is_a_type_error_that_names_it(m, value):
    d = m.dict()
    with pytest.raises(TypeError, match=f"not {type(value).__name__}") as refused:
        d["x"] = value
    assert 'codec="pickle"' in str(refused.value)
    assert "x" not in d


def test_integers_beyond_64_bits_overflow(m):
    d = m.dict()
    for big in (2**64, -(2**63) - 1):
        with pytest.raises(OverflowError):
            d["x"] = big
    d["n"] = 2**64 - 1  # the largest a manager int holds
    with pytest.raises(OverflowError):
        d.incr("n")
    d["n"] = -(2**63)
    with pytest.raises(OverflowError):
        d.incr("n", -1)
    # Signed and unsigned mix exactly across the whole 64-bit range.
    d["u"] = 2**64 - 1
    assert d.incr("u", -1) == 2**64 - 2 and d.incr("u", -(2**63)) == 2**63 - 2
    d["m"] = 2**63 - 1
    assert d.incr("m", 1) == 2**63 and d.incr("m", -(2**63)) == 0
    assert d.incr("f", 1) == 1 and d.incr("f", 0.5) == 1.5  # a float makes a float, as Python
    d["s"] = "text"
    with pytest.raises(TypeError):
        d.incr("s")
    assert d["n"] == -(2**63) and d["s"] == "text"  # the refused ones changed nothing


def test_too_deep_and_too_large_are_refused_before_sending(m):
    d = m.dict()
    deep = []
    for _ in range(65):
        deep = [deep]
    with pytest.raises(ValueError, match="levels deep"):
        d["x"] = deep
    with pytest.raises(ValueError, match="over the limit"):
        d["x"] = b"\0" * (65 << 20)
    assert len(d) == 0


def test_missing_keys_and_indices(m):
    d, lst = m.dict(), m.list([1])
    with pytest.raises(KeyError):
        d["nope"]
    with pytest.raises(IndexError):
        lst[5]
    with pytest.raises(ValueError):
        lst.remove(9)
    with pytest.raises(ValueError):
        lst.index(9)


def test_locks_semaphores_and_queues_refuse_as_pythons(m):
    lock = m.Lock()
    with pytest.raises(RuntimeError):
        lock.release()  # not held
    assert lock.acquire()
    assert lock.acquire(False) is False  # held: a plain lock is taken
    with pytest.raises(RuntimeError):
        lock.acquire()  # held by this owner: it would wait for itself forever
    lock.release()
    bounded = m.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        bounded.release()
    tasks = m.JoinableQueue()
    with pytest.raises(ValueError):
        tasks.task_done()
    with pytest.raises(queue.Empty):
        tasks.get(timeout=0.01)
    full = m.Queue(1)
    full.put(1)
    with pytest.raises(queue.Full):
        full.put(2, timeout=0.01)


def test_code_that_would_run_in_the_manager_is_refused(m):
    with pytest.raises(TypeError, match="sort a copy"):
        m.list([2, 1]).sort(key=abs)
    with pytest.raises(TypeError, match="action"):
        m.Barrier(2, action=print)
    with pytest.raises(NotImplementedError, match="Pool"):
        m.Pool(2)


def test_a_wrong_key_is_an_authentication_error(m):
    with pytest.raises(multiprocessing.AuthenticationError):
        multiproc.connect(m.address, b"not the key")


def test_a_shut_down_managers_proxies_are_manager_gone_at_once():
    manager = Manager()
    d, lock = manager.dict(), manager.Lock()
    manager.shutdown()
    with pytest.raises(ManagerGone):
        d["x"] = 1
    with pytest.raises(ManagerGone):
        lock.acquire()


def test_a_manager_cannot_be_pickled(m):
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(m)


def test_a_started_manager_cannot_start_again():
    with SyncManager() as manager:
        with pytest.raises(multiprocessing.ProcessError):
            manager.start()


class _Trap:
    """Unpickling it creates the file `path`: proof of who unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _read_set(d, out):
    out.put(sorted(d["s"]))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_pickle_codec_is_the_clients_and_the_server_never_unpickles(tmp_path, method):
    trap = tmp_path / "unpickled"
    with Manager(codec="pickle") as manager:
        d = manager.dict(name="shared")
        d["s"] = {3, 1, 2}
        d["when"] = datetime.date(2026, 12, 1)
        assert d["s"] == {1, 2, 3} and d["when"] == datetime.date(2026, 12, 1)
        # Proxies keep their codec in other processes.
        ctx = multiprocessing.get_context(method)
        out = ctx.Queue()
        child = ctx.Process(target=_read_set, args=(d, out))
        child.start()
        assert out.get(timeout=30) == [1, 2, 3]
        child.join(30)
        d["trap"] = _Trap(str(trap))
        with pytest.raises(TypeError):
            d.incr("s")  # an opaque value is no number
        # A client without the codec gets the bytes, and stores them back unchanged.
        plain = multiproc.connect(manager.address, manager._authkey)
        other = plain.dict(name="shared")
        held = other["trap"]
        assert isinstance(held, multiproc.Pickled) and not trap.exists()
        other["copy"] = held
        assert not trap.exists()  # neither the server nor the plain client unpickled it
        d["copy"]  # the codec's client does
        assert trap.exists()


READER = """
import pickle, sys
import multiprocessing
import multiproc
data = sys.stdin.buffer.read()
try:
    pickle.loads(data)
except multiprocessing.AuthenticationError as refused:
    print("refused:", refused, flush=True)
multiproc.connect(sys.argv[1], sys.argv[2].encode())
print("read:", pickle.loads(data)["k"], flush=True)
"""


def test_a_pickled_proxy_carries_no_key_and_its_reader_supplies_one():
    import subprocess
    import sys
    key = b"a key of its own, not the process's"
    with SyncManager(authkey=key) as manager:
        d = manager.dict(k="v")
        data = pickle.dumps(d)
        assert key not in data  # CPython's rule: the key travels only into a spawned child
        read = subprocess.run([sys.executable, "-c", READER, manager.address, key.decode()],
                              input=data, capture_output=True, timeout=60)
        assert read.returncode == 0, read.stderr
        refused, value = read.stdout.decode().splitlines()
        assert refused.startswith("refused: a proxy of the manager at " + manager.address)
        assert "multiproc.connect(" in refused
        assert value == "read: v"
