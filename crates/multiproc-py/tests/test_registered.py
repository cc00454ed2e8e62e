"""`BaseManager.register`: a program's own types, their objects in the manager's server, used
through proxies, under fork and spawn."""
import multiprocessing
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from multiproc.managers import (  # noqa: E402
    AutoProxy, BaseManager, BaseProxy, RemoteError, SyncManager,
)
from registered_types import Counter, Refuses, squares  # noqa: E402

DEADLINE = 30


class IteratorProxy(BaseProxy):
    _exposed_ = ("__next__",)

    def __iter__(self):
        return self

    def __next__(self):
        return self._callmethod("__next__")


class Registered(SyncManager):
    pass


Registered.register("Counter", Counter)
Registered.register("Hidden", Counter, exposed=("add", "_hidden"))
Registered.register("squares", squares, proxytype=IteratorProxy)
Registered.register("Refuses", Refuses)


@pytest.fixture(params=["fork", "spawn"])
def m(request):
    with Registered(ctx=multiprocessing.get_context(request.param)) as manager:
        yield manager


def add_in_child(counter, times):
    for _ in range(times):
        counter.add()


def test_methods_run_in_the_server_with_arguments_and_keywords(m):
    counter = m.Counter(10, step=5)
    assert isinstance(counter, AutoProxy)
    assert counter.add() == 15 and counter.add(by=2) == 17 and counter.add(3) == 20
    assert [name for name in ("add", "fail", "_hidden") if hasattr(counter, name)] == \
        ["add", "fail"]
    with pytest.raises(RemoteError, match="not exposed"):
        counter._callmethod("_hidden")
    hidden = m.Hidden()
    assert hidden._hidden() == "hidden" and not hasattr(hidden, "fail")


def test_a_methods_exception_is_raised_again(m):
    counter = m.Counter()
    with pytest.raises(ValueError, match="not this value"):
        counter.fail("value")
    # An exception that is not built in cannot be rebuilt here: RemoteError, with its name.
    with pytest.raises(RemoteError, match="Unusual: an exception of the program's own"):
        counter.fail("other")
    with pytest.raises(KeyError):
        m.Refuses()
    assert counter.add() == 1  # the object is unharmed


def test_a_generator_behind_a_proxy_type(m):
    assert list(m.squares(5)) == [0, 1, 4, 9, 16]


def test_calls_from_many_processes_are_one_at_a_time(m):
    counter = m.Counter()
    ctx = multiprocessing.get_context(m._ctx.get_start_method())
    workers = [ctx.Process(target=add_in_child, args=(counter, 50)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE)
        assert w.exitcode == 0
    assert counter.add(0) == 200


def test_a_registered_object_is_freed_with_its_last_proxy(m):
    keeper = m.Counter()
    before = keeper.live_counters()
    others = [m.Counter() for _ in range(5)]
    assert keeper.live_counters() == before + 5
    stored = m.dict()
    stored["counter"] = others[0]
    del others
    # The one stored in the dict lives; the others' Python objects in the server are let go.
    deadline = time.monotonic() + DEADLINE
    while keeper.live_counters() != before + 1:
        assert time.monotonic() < deadline, keeper.live_counters()
        time.sleep(0.01)
    assert stored["counter"].add(7) == 7  # read back as a live proxy
    del stored["counter"]
    while keeper.live_counters() != before:
        assert time.monotonic() < deadline, keeper.live_counters()
        time.sleep(0.01)


def test_a_plain_base_manager_and_its_own_registry():
    class Mine(BaseManager):
        pass

    Mine.register("Counter", Counter)
    assert not hasattr(SyncManager, "Counter")  # registered on subclasses only
    assert not hasattr(Mine, "Hidden")
    with Mine() as manager:
        assert manager.Counter(1).add() == 2
        assert not hasattr(manager, "dict")
    with pytest.raises(NotImplementedError):
        Mine.register("Other", Counter, method_to_typeid={"add": "Counter"})
