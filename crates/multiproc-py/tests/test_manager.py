"""The Python package against real manager servers and real multiprocessing children: the
proxies' protocols checked against Python's own dict and list, values and their errors, proxies
that travel to children under fork and spawn, lifetime, and the server ending with its starter.
"""
import gc
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

import multiproc
from multiproc import Manager

DEADLINE = 30


@pytest.fixture(scope="module")
def m():
    with Manager() as manager:
        yield manager


def test_a_dict_answers_as_pythons_dict(m):
    d, py = m.dict(), {}
    for k, v in [("a", 1), ("b", 2), (3, "three"), ("a", 10), ((1, 2), None)]:
        d[k] = v
        py[k] = v
    assert len(d) == len(py) and list(d) == list(py)
    assert d.keys() == list(py.keys()) and d.values() == list(py.values())
    assert d.items() == list(py.items())
    assert "a" in d and "zz" not in d
    assert d.get("zz", 7) == 7 and d.get("a") == 10
    assert d.pop("b") == py.pop("b")
    assert d.pop("b", "gone") == "gone"
    with pytest.raises(KeyError):
        d.pop("b")
    with pytest.raises(KeyError) as missing:
        d["nope"]
    assert missing.value.args == ("nope",)
    assert d.popitem() == py.popitem()
    assert d.setdefault("s", 5) == 5 and d.setdefault("s", 6) == 5
    d.update({"u": 1}, v=2)
    assert d.copy() == {"a": 10, 3: "three", "s": 5, "u": 1, "v": 2}
    del d["u"]
    with pytest.raises(KeyError):
        del d["u"]
    d.clear()
    assert len(d) == 0


def test_a_dict_changed_while_iterating_raises_as_pythons(m):
    d = m.dict({"a": 1, "b": 2})
    with pytest.raises(RuntimeError):
        for key in d:
            d[key + "!"] = 0


def test_a_list_answers_as_pythons_list(m):
    py = [5, 1, 4, 2, 3]
    lst = m.list(py)
    steps = [
        lambda x: x.__setitem__(slice(1, 3), [7, 7, 7]),
        lambda x: x.__delitem__(slice(None, None, 2)),
        lambda x: x.insert(-1, 0),
        lambda x: x.append(9),
        lambda x: x.extend([8, 8]),
        lambda x: x.remove(8),
        lambda x: x.reverse(),
        lambda x: x.sort(),
        lambda x: x.sort(reverse=True),
        lambda x: x.__setitem__(-1, 6),
        lambda x: x.__delitem__(0),
    ]
    for step in steps:
        step(py)
        step(lst)
        assert list(lst) == py
    assert lst[-2] == py[-2] and lst[::-1] == py[::-1] and lst[1:3] == py[1:3]
    assert lst.pop() == py.pop() and lst.pop(0) == py.pop(0)
    assert lst.index(py[1]) == py.index(py[1]) and lst.count(7) == py.count(7)
    assert (py[0] in lst) and (12345 not in lst)
    lst += [1, 2]
    py += [1, 2]
    lst *= 2
    py *= 2
    assert list(lst) == py and lst + [0] == py + [0]
    with pytest.raises(IndexError):
        lst[100]
    with pytest.raises(ValueError):
        lst.remove(12345)
    with pytest.raises(ValueError):
        lst.index(12345)
    with pytest.raises(TypeError):
        lst.sort(key=abs)


def test_values_are_exact_and_the_others_are_refused_with_a_clear_error(m):
    d = m.dict()
    value = {"n": None, "b": True, "i": -(2**63), "u": 2**64 - 1, "f": 1.5, "s": "é", "y": b"\x00",
             "l": [1, [2]], "t": (1, 2)}
    d["v"] = value
    assert d["v"] == {**value, "t": [1, 2]}  # a tuple value comes back a list, as in JSON
    with pytest.raises(TypeError, match="not set"):
        d["x"] = {1, 2}
    with pytest.raises(OverflowError):
        d["x"] = 2**64
    with pytest.raises(TypeError):
        d.incr("v")  # not a number
    d["n"] = 2**64 - 1  # the largest a manager int holds
    with pytest.raises(OverflowError):
        d.incr("n")
    d["n"] = -(2**63)
    with pytest.raises(OverflowError):
        d.incr("n", -1)
    # 1, 1.0 and True are three keys here (Python: one): the key is its encoding.
    for k in (1, 1.0, True):
        d[k] = repr(k)
    assert d[1] == "1" and d[1.0] == "1.0" and d[True] == "True"


def test_a_proxy_stored_as_a_value_stays_live(m):
    outer = m.dict()
    outer["config"] = m.dict()
    outer["config"]["workers"] = 4  # writes through: the stored value is the proxy
    assert outer["config"]["workers"] == 4
    lst = m.list()
    lst.append(lst)  # a cycle, as CPython's test_containers makes
    assert isinstance(lst[0], multiproc.ListProxy) and len(lst[0]) == 1


def test_namespace_value_queue_lock_and_event(m):
    ns = m.Namespace(a=1)
    ns.b = 2
    ns._local = 3
    assert (ns.a, ns.b, ns._local) == (1, 2, 3)
    assert repr(ns) == "Namespace(a=1, b=2)"
    with pytest.raises(AttributeError):
        ns.missing
    v = m.Value("i", 5)
    v.value += 1
    assert v.value == 6 and v.incr(4) == 6 and v.value == 10
    q = m.Queue(maxsize=1)
    q.put("x")
    with pytest.raises(queue.Full):
        q.put("y", timeout=0.01)
    assert q.get() == "x"
    with pytest.raises(queue.Empty):
        q.get_nowait()
    lock = m.Lock()
    assert lock.acquire() and not lock.acquire(False)
    assert not lock.acquire(timeout=0.01)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()
    e = m.Event()
    assert not e.wait(0.01)
    e.set()
    assert e.wait(1) and e.is_set()


def _add_many(d, n):
    for _ in range(n):
        d.incr("hits")


def _from_a_queue(q, out):
    d = q.get(timeout=DEADLINE)
    d["seen"] = os.getpid()
    out.put(d["seen"])


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_proxies_travel_to_children_and_no_update_is_lost(m, method):
    ctx = multiprocessing.get_context(method)
    d = m.dict(hits=0)
    workers = [ctx.Process(target=_add_many, args=(d, 200)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE)
        assert w.exitcode == 0
    assert d["hits"] == 800
    # Through a multiprocessing queue, as a message.
    q, out = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_from_a_queue, args=(q, out))
    child.start()
    q.put(d)
    assert out.get(timeout=DEADLINE) == d["seen"]
    child.join(DEADLINE)


def _count_in(d, key):
    return d.incr(key)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_proxies_travel_as_pool_tasks(m, method):
    ctx = multiprocessing.get_context(method)
    d = m.dict(n=0)
    with ctx.Pool(2) as pool:
        counts = pool.starmap(_count_in, [(d, "n")] * 20, chunksize=3)
    assert sorted(counts) == list(range(1, 21)) and d["n"] == 20


def test_an_object_is_freed_with_its_last_proxy():
    # A manager of its own: the module's sees other tests' children give up their holds when
    # their connections end, which the server learns a moment after they exit.
    with Manager() as m:
        _freed_with_the_last_proxy(m)


def _freed_with_the_last_proxy(m):
    before = m._number_of_objects()
    d = m.dict()
    alias = d
    assert m._number_of_objects() == before + 1
    del d, alias
    gc.collect()
    assert m._number_of_objects() == before
    named = m.dict(name="kept")
    del named
    gc.collect()
    assert m._number_of_objects() == before + 1
    assert m.remove_named("kept")
    assert m._number_of_objects() == before


STARTER = """
import sys, time
from multiproc import Manager
m = Manager()
print(m._process.pid, flush=True)
time.sleep(600)
"""


def test_the_server_ends_with_its_starter_even_killed():
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE)
    try:
        server = int(starter.stdout.readline())
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(DEADLINE)
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                with open(f"/proc/{server}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        break
            except FileNotFoundError:
                break
            assert time.monotonic() < deadline, "the server outlived its killed starter"
            time.sleep(0.005)
    finally:
        starter.kill()


def _wait_at(barrier, out):
    out.put(barrier.wait(DEADLINE))


def _notify_when_set(cond, ns):
    with cond:
        ns.ready = True
        cond.notify_all()


def _take_and_die(lock, taken):
    lock.acquire()
    taken.set()
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_waiting_objects_across_processes(m, method):
    ctx = multiprocessing.get_context(method)
    barrier, out = m.Barrier(3), ctx.Queue()
    parties = [ctx.Process(target=_wait_at, args=(barrier, out)) for _ in range(2)]
    for p in parties:
        p.start()
    mine = barrier.wait(DEADLINE)
    theirs = sorted([mine, out.get(timeout=DEADLINE), out.get(timeout=DEADLINE)])
    assert theirs == [0, 1, 2]
    for p in parties:
        p.join(DEADLINE)
    cond, ns = m.Condition(), m.Namespace(ready=False)
    child = ctx.Process(target=_notify_when_set, args=(cond, ns))
    with cond:
        child.start()
        assert cond.wait_for(lambda: ns.ready, timeout=DEADLINE)
    child.join(DEADLINE)
    # A holder killed holding the lock: released, and the next taker told (CPython waits forever).
    lock, taken = m.Lock(), ctx.Event()
    killed = ctx.Process(target=_take_and_die, args=(lock, taken))
    killed.start()
    assert taken.wait(DEADLINE)
    killed.join(DEADLINE)
    assert lock.acquire(timeout=DEADLINE) and lock.owner_died
    lock.release()


def test_semaphores_barriers_joinable_queues_and_arrays(m):
    s = m.BoundedSemaphore(1)
    assert s.acquire() and not s.acquire(False) and not s.acquire(timeout=0.01)
    s.release()
    with pytest.raises(ValueError):
        s.release()
    assert m.Semaphore(2).get_value() == 2
    b = m.Barrier(2, timeout=0.05)
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    assert b.broken
    b.reset()
    assert not b.broken and b.parties == 2 and b.n_waiting == 0
    with pytest.raises(TypeError):
        m.Barrier(2, action=print)
    q = m.JoinableQueue()
    q.put(1)
    q.get()
    q.task_done()
    q.join()
    with pytest.raises(ValueError):
        q.task_done()
    a = m.Array("i", [3, 1, 2])
    a[0] = 7
    a[1:3] = [8, 9]
    assert a[:] == [7, 8, 9] and len(a) == 3 and a.tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        a[0:2] = [1]  # the length is fixed


def _writes(d, lst):
    d["a"] = 1
    del d["a"]
    lst.append("x")
    lst.insert(0, "y")


def test_watchers_see_every_change_another_process_makes(m):
    d, lst = m.dict(), m.list()
    dw, lw = d.watch(), lst.watch()
    assert dw.next(timeout=0.01) is None
    child = multiprocessing.get_context("spawn").Process(target=_writes, args=(d, lst))
    child.start()
    assert [dw.next(DEADLINE), dw.next(DEADLINE)] == [("set", "a", 1), ("del", "a", None)]
    assert [lw.next(DEADLINE), lw.next(DEADLINE)] == [("append", None, "x"), ("insert", 0, "y")]
    child.join(DEADLINE)


def test_two_threads_sharing_a_lock_proxy_are_two_owners(m):
    lock = m.Lock()
    assert lock.acquire()
    other = []
    thread = threading.Thread(target=lambda: other.append(lock.acquire(timeout=0.05)))
    thread.start()
    thread.join(DEADLINE)
    assert other == [False], "another thread does not hold what this one took"
    refused = []

    def release_elsewhere():
        try:
            lock.release()
        except RuntimeError as e:
            refused.append(e)

    thread = threading.Thread(target=release_elsewhere)
    thread.start()
    thread.join(DEADLINE)
    assert len(refused) == 1, "a thread cannot release what another holds"
    lock.release()
    assert not lock.locked()
