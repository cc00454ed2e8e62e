"""multiproc: `multiprocessing.Manager`'s drop-in, on the manager of the `multiproc` Rust crate.

    from multiproc import Manager

    with Manager() as m:
        d = m.dict()
        d["hits"] = 0
        d.incr("hits")          # d["hits"] += 1, atomically: no update is lost

Proxies travel to `multiprocessing` children as CPython's do, and a proxy stored in a dict or a
list stays live (`d["config"] = m.dict()`).
"""
from .managers import (  # noqa: F401
    ArrayProxy, AutoProxy, BarrierProxy, BaseManager, BaseProxy, BoundedSemaphoreProxy, ConditionProxy, DictProxy,
    EventProxy, JoinableQueueProxy, ListProxy, LockProxy, ManagerGone, NamespaceProxy, QueueProxy,
    RemoteError, RLockProxy, SemaphoreProxy, SyncManager, ValueProxy,
)


def Manager():
    """A started manager, as `multiprocessing.Manager()`: use it in a `with` block, or call its
    `shutdown()`."""
    return SyncManager().start()


def connect(address, authkey):
    """The manager at `address` (a Unix socket path, or `host:port`), started elsewhere (another
    program, `multiproc serve`, a Rust `Manager`)."""
    return SyncManager(address, authkey).connect()
