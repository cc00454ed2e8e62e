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
    ArrayProxy, AutoProxy, BarrierProxy, BaseManager, BaseProxy, BoundedSemaphoreProxy,
    ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy, LockProxy, ManagerGone,
    NamespaceProxy, ObjectProxy, Pickled, QueueProxy, RLockProxy, SemaphoreProxy, SyncManager,
    ValueProxy,
)


def Manager(*, codec=None):
    """A started manager, as `multiprocessing.Manager()`: use it in a `with` block, or call its
    `shutdown()`. Values are None, bool, int (64 bits), float, str, bytes, list, tuple, dict and
    proxies; with `codec="pickle"` other objects are stored as pickles, made and read by the
    clients (the server never unpickles; every holder of the key can then make you unpickle)."""
    return SyncManager(codec=codec).start()


def connect(address, authkey, *, codec=None):
    """The manager at `address` (a Unix socket path, or `host:port`), started elsewhere (another
    program, `multiproc serve`, a Rust `Manager`)."""
    return SyncManager(address, authkey, codec=codec).connect()


def __getattr__(name):
    # multiprocessing.managers' RemoteError, imported when first asked for (managers.py).
    if name == "RemoteError":
        from .managers import _remote_error
        return _remote_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
