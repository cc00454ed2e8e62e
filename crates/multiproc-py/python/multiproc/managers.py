"""multiprocessing.managers' shape on multiproc's manager: `SyncManager`, its factories, and the
proxies, with Python's protocols and exceptions.

Every proxy is a token of the native client (`_native.Token`: an object on the manager, its
operations by protocol name) with Python's methods on top. Values are None, bool, int (64 bits),
float, str, bytes, list, tuple, dict and proxies; anything else is a TypeError.
"""
import builtins
import os
import queue
import signal
import socket
import threading

from . import _native

__all__ = [
    "BaseManager", "SyncManager", "BaseProxy", "AutoProxy", "ObjectProxy", "DictProxy",
    "ListProxy", "NamespaceProxy", "ValueProxy",
    "ArrayProxy", "LockProxy", "RLockProxy", "ConditionProxy", "SemaphoreProxy",
    "BoundedSemaphoreProxy", "EventProxy", "BarrierProxy", "QueueProxy", "JoinableQueueProxy",
    "RemoteError", "ManagerGone", "Pickled",
]

ManagerGone = _native.ManagerGone

# Forked children: every proxy reconnects on its first call (its parent's connection is not its).
_generation = 0


def _forked():
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_forked)


def _remote_error():
    """`RemoteError`: the manager refused an operation with a code that has no Python exception
    of its own, or a registered type's method raised one that is not built in. CPython's own
    class, so that code written for `multiprocessing.managers` catches it; imported when first
    needed (`multiprocessing.managers` costs CPython's manager start a third of its time)."""
    from multiprocessing.managers import RemoteError
    return RemoteError


def __getattr__(name):
    if name == "RemoteError":
        return _remote_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ERRORS = {
    "KeyMissing": KeyError,
    "IndexOutOfRange": IndexError,
    "ItemMissing": ValueError,
    "TypeError": TypeError,
    "Overflow": OverflowError,
    "UnknownObject": ReferenceError,
    "NotOwner": RuntimeError,
    "WouldDeadlock": RuntimeError,
    "TooManyReleases": ValueError,
    "TooManyTaskDone": ValueError,
    "FrameTooLarge": ValueError,
    "BadArguments": ValueError,
    "Full": queue.Full,
    "Empty": queue.Empty,
    "BrokenBarrier": threading.BrokenBarrierError,
}


_BUILTIN_EXCEPTIONS = {
    name: value for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}


def _error(refused, key=None):
    code, message = refused.args
    if code == "KeyMissing" and key is not None:
        return KeyError(key)
    if code == "MethodFailed":
        # A registered type's method raised: a built-in exception is raised again as itself.
        name, _, text = message.partition(": ")
        raised = _BUILTIN_EXCEPTIONS.get(name)
        if raised is not None:
            return raised(text) if text else raised()
        return _remote_error()(message)
    if code == "AuthenticationError":
        import multiprocessing
        return multiprocessing.AuthenticationError(message)
    raised = _ERRORS.get(code)
    return raised(message) if raised is not None else _remote_error()(message)


def _key(key):
    """A key as Python had it: a list can never be a key, so an array is the tuple it was."""
    return tuple(_key(k) for k in key) if isinstance(key, list) else key


def _wait_ms(blocking=True, timeout=None):
    """A wait as the protocol takes it: milliseconds, 0 for none, None for as long as it takes."""
    if not blocking:
        return 0
    if timeout is None or timeout < 0:
        return None
    return max(0, int(timeout * 1000))


def _proxy_for(token, manager=None):
    """The proxy of `token`'s object, of its kind (a reference read back)."""
    kind = token.kind()
    if kind == "object":
        state = token.call("object.get", [])
        if isinstance(state, list) and len(state) == 4 and state[0] == "obj":
            _, _, exposed, typeid = state  # a type registered in Python
            return _auto_proxy_type(typeid, exposed)(token, manager)
        return ObjectProxy(token, manager)  # one compiled into a Rust server
    return _PROXIES[kind](token, manager)


# The keys of the managers this process started or connected to, by address: a proxy that
# arrives without its key (CPython's rule) finds it here, else uses the process's authkey.
_KEYS = {}


def _pickled(token):
    """`token` as pickled data, with CPython's rule for the key: it travels only into a child
    being spawned (the private pipe of its start); anywhere else (a queue, a pool's task, a
    file) the bytes carry no key, and the reader supplies its own."""
    from multiprocessing import context
    if context.get_spawning_popen() is not None:
        return (token.to_bytes(), True)
    return (token.to_keyless(), False)


def _unpickled(data, with_key, kind, codec):
    """The token `_pickled` made, in this process."""
    try:
        if with_key:
            return _native.token_from_bytes(data, kind, codec)
        address = _native.keyless_address(data)
        key = _KEYS.get(address)
        if key is None:
            import multiprocessing
            key = bytes(multiprocessing.current_process().authkey)
        try:
            return _native.token_from_keyless(data, kind, key, codec)
        except _native.Refused as refused:
            if refused.args[0] != "AuthenticationError":
                raise
            import multiprocessing
            raise multiprocessing.AuthenticationError(
                f"a proxy of the manager at {address} arrived without its key (as CPython's, "
                f"outside of spawning a child), and this process's authkey is not it: call "
                f"multiproc.connect({address!r}, key) once in this process") from None
    except _native.Refused as refused:
        raise _error(refused) from None


def _rebuild(cls, data, kind, codec=None, with_key=True):
    return cls(_unpickled(data, with_key, kind, codec))


class Pickled:
    """A value another client stored with `codec="pickle"`, read by a client without it: its
    bytes, not unpickled (`load()` does, if you trust every holder of the manager's key).
    Storing it again stores the same bytes."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = bytes(data)

    def load(self):
        import pickle
        return pickle.loads(self.data)

    def __eq__(self, other):
        return isinstance(other, Pickled) and other.data == self.data

    def __hash__(self):
        return hash(self.data)

    def __repr__(self):
        return f"Pickled({len(self.data)} bytes)"


class BaseProxy:
    """A proxy of an object on a manager. Clones (and copies in other processes) are the same
    object; the object lives while a proxy of it does, anywhere."""

    _typeid = "object"

    def __init__(self, token, manager=None):
        self._token = token
        self._manager = manager
        self._generation = _generation

    def _current(self):
        """The token calls go through: after a fork, one of this process's own."""
        if self._generation != _generation:
            self._token = self._token.in_this_process()
            self._generation = _generation
        return self._token

    def _call(self, op, *args, key=None):
        try:
            return self._current().call(op, list(args))
        except _native.Refused as refused:
            raise _error(refused, key) from None

    def _callmethod(self, methodname, args=(), kwds={}):
        """Calls method `methodname` of the object on the server (a registered type's), with
        `args` and `kwds`; a method that is not exposed is `RemoteError`."""
        return self._call("object.call", methodname, [list(args), dict(kwds)])

    def __reduce__(self):
        token = self._token
        data, with_key = _pickled(token)
        return (_rebuild, (type(self), data, token.kind(), token.codec, with_key))

    def __repr__(self):
        return f"<{type(self).__name__} object, typeid {self._typeid!r} at {hex(id(self))}>"


class AutoProxy(BaseProxy):
    """The proxy of a registered type without a proxy type of its own: a method for each
    exposed method of the object."""

    _exposed_ = ()

    def __reduce__(self):
        token = self._token
        data, with_key = _pickled(token)
        return (_rebuild_auto, (self._typeid, self._exposed_, data, token.codec, with_key))


_AUTO_PROXIES = {}


class ObjectProxy(BaseProxy):
    """An object of a type compiled into a Rust manager's server (`ManagerBuilder::register`
    of the `multiproc` crate, a `Shared` type): `call(method, *args)` runs its method there,
    atomically; `state` is its state as a value (a struct is a dict by field name)."""

    _typeid = "object"

    def call(self, method, *args):
        """Runs `method` with `args`: none, one value, or several (sent as a list, as the Rust
        side's tuple)."""
        sent = None if not args else args[0] if len(args) == 1 else list(args)
        return self._call("object.call", method, sent)

    @property
    def state(self):
        return self._call("object.get")


def _auto_proxy_type(typeid, exposed):
    """The `AutoProxy` class of `typeid` with `exposed` methods (one class for each)."""
    key = (typeid, tuple(exposed))
    cls = _AUTO_PROXIES.get(key)
    if cls is None:
        def method(name):
            def call(self, *args, **kwds):
                return self._callmethod(name, args, kwds)
            call.__name__ = name
            return call
        namespace = {name: method(name) for name in exposed}
        namespace.update(_exposed_=tuple(exposed), _typeid=typeid)
        cls = _AUTO_PROXIES[key] = type(f"AutoProxy[{typeid}]", (AutoProxy,), namespace)
    return cls


def _rebuild_auto(typeid, exposed, data, codec=None, with_key=True):
    return _auto_proxy_type(typeid, exposed)(_unpickled(data, with_key, "object", codec))


class DictProxy(BaseProxy):
    """A dict on the manager: each method one atomic round trip."""

    _typeid = "dict"

    def __getitem__(self, key):
        return self._call("dict.getitem", key, key=key)

    def __setitem__(self, key, value):
        self._call("dict.set", key, value)

    def __delitem__(self, key):
        self._call("dict.del", key, key=key)

    def __len__(self):
        return self._call("dict.len")

    def __contains__(self, key):
        return self._call("dict.contains", key)

    def __iter__(self):
        # As a dict's iterator: a change after iter() is a RuntimeError at the next step.
        return self._keys_since(self._call("dict.version"))

    def _keys_since(self, version):
        keys = self._call("dict.keys")
        if self._call("dict.version") != version:
            raise RuntimeError("dictionary changed size during iteration")
        for key in keys:
            yield _key(key)
        if self._call("dict.version") != version:
            raise RuntimeError("dictionary changed size during iteration")

    def keys(self):
        return [_key(k) for k in self._call("dict.keys")]

    def values(self):
        return self._call("dict.values")

    def items(self):
        return [(_key(k), v) for k, v in self._call("dict.items")]

    def get(self, key, default=None):
        found = self._call("dict.get", key)
        return default if found is None else found[0]

    _MISSING = object()

    def pop(self, key, default=_MISSING):
        found = self._call("dict.pop", key)
        if found is None:
            if default is DictProxy._MISSING:
                raise KeyError(key)
            return default
        return found[0]

    def popitem(self):
        key, value = self._call("dict.popitem")
        return _key(key), value

    def setdefault(self, key, default=None):
        return self._call("dict.setdefault", key, default)

    def update(self, other=(), **kwargs):
        pairs = list(other.items() if hasattr(other, "items") else other) + list(kwargs.items())
        self._call("dict.update", [[k, v] for k, v in pairs])

    def clear(self):
        self._call("dict.clear")

    def copy(self):
        return dict(self.items())

    def incr(self, key, delta=1):
        """`d[key] += delta` on the server, atomically: no update is lost. Returns the sum."""
        return self._call("dict.incr", key, delta)

    def watch(self):
        """A `Watcher` of the changes made from now on, by any process."""
        return Watcher(self)

    def compare_and_swap(self, key, expected, new):
        """Sets `key` to `new` if its value is `expected` (None: absent), atomically."""
        return self._call("dict.compare_and_swap", key, expected, new)


class Change(tuple):
    """A change a watcher saw: `(op, key, value)`. For a dict, `op` is `"set"` (key, value),
    `"del"` (key), `"clear"`, `"nested"` (key, kind); for a list, `"append"` (value), `"set"` and
    `"insert"` (index as key, value), `"remove"` (index), `"clear"`; `"missed"` when the watcher
    fell behind and changes were dropped."""

    __slots__ = ()

    def __new__(cls, op, key=None, value=None):
        return super().__new__(cls, (op, key, value))

    op = property(lambda self: self[0])
    key = property(lambda self: self[1])
    value = property(lambda self: self[2])

    def __repr__(self):
        return f"Change{tuple(self)!r}"


class Watcher:
    """The changes made to a dict or a list from now on, by any process, in order: iterate it
    (blocking), or `next(timeout)` (None at the timeout)."""

    def __init__(self, proxy):
        self._proxy = proxy
        self._pending = []
        version, _, _ = proxy._call("watch", 2**64 - 1, 0)
        self._version = version

    def next(self, timeout=None):
        while not self._pending:
            wait = _wait_ms(True, timeout)
            version, events, missed = self._proxy._call("watch", self._version, wait)
            if not events and not missed:
                return None  # the timeout came first
            self._version = version
            if missed:
                self._pending.append(Change("missed"))
            for op, *rest in events:
                if op == "append":
                    change = Change(op, None, rest[0])
                elif op in ("set", "insert", "nested"):
                    change = Change(op, _key(rest[0]), rest[1])
                elif op in ("del", "remove"):
                    change = Change(op, _key(rest[0]))
                else:
                    change = Change(op)
                self._pending.append(change)
        return self._pending.pop(0)

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()


class _Sequence(BaseProxy):
    """What a list and an array share: Python's indices and slices, length, iteration."""

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._call("list.slice", index.start, index.stop, index.step)
        return self._call("list.get", index)

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            self._call("list.set_slice", index.start, index.stop, index.step, list(value))
        else:
            self._call("list.set", index, value)

    def __len__(self):
        return self._call("list.len")

    _PAGE = 256

    def __iter__(self):
        """The items, read lazily, a page of 256 at a time: a change made before a page is read
        is seen, as with a list's own iterator."""
        start = 0
        while True:
            page = self._call("list.slice", start, start + self._PAGE, None)
            yield from page
            if len(page) < self._PAGE:
                return
            start += self._PAGE


class ListProxy(_Sequence):
    """A list on the manager, with Python's indices and slices."""

    _typeid = "list"

    def __delitem__(self, index):
        if isinstance(index, slice):
            self._call("list.del_slice", index.start, index.stop, index.step)
        else:
            self._call("list.remove", index)

    def __contains__(self, item):
        return self._call("list.contains", item)

    def __iadd__(self, items):
        self.extend(items)
        return self

    def __imul__(self, times):
        self._call("list.repeat", times)
        return self

    def __add__(self, other):
        return self._call("list.all") + list(other)

    def __mul__(self, times):
        return self._call("list.all") * times

    def append(self, item):
        self._call("list.append", item)

    def extend(self, items):
        self._call("list.extend", list(items))

    def insert(self, index, item):
        self._call("list.insert", index, item)

    def pop(self, index=-1):
        found = self._call("list.pop", index)
        return found[0]

    def remove(self, item):
        self._call("list.remove_item", item)

    def index(self, item):
        found = self._call("list.index", item)
        if found is None:
            raise ValueError(f"{item!r} is not in list")
        return found[0]

    def count(self, item):
        return self._call("list.count", item)

    def reverse(self):
        self._call("list.reverse")

    def watch(self):
        """A `Watcher` of the changes made from now on, by any process."""
        return Watcher(self)

    def sort(self, key=None, reverse=False):
        if key is not None:
            raise TypeError("sort(key=...) would run code in the manager: sort a copy instead")
        self._call("list.sort", bool(reverse))


class NamespaceProxy(BaseProxy):
    """A namespace on the manager: its attributes are shared; those beginning with `_` are the
    proxy's own."""

    _typeid = "Namespace"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._call("dict.getitem", name)
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._call("dict.set", name, value)

    def __delattr__(self, name):
        if name.startswith("_"):
            object.__delattr__(self, name)
        else:
            try:
                self._call("dict.del", name)
            except KeyError:
                raise AttributeError(name) from None

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in self._call("dict.items"))
        return f"Namespace({items})"


class ValueProxy(BaseProxy):
    _typeid = "Value"

    def get(self):
        return self._call("value.get")

    def set(self, value):
        self._call("value.set", value)

    value = property(get, set)

    def incr(self, delta=1):
        """Adds `delta` on the server, atomically; returns the value before."""
        return self._call("value.fetch_add", delta)


class _Acquirable:
    """`with proxy:` for what has `acquire` and `release`."""

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class LockProxy(_Acquirable, BaseProxy):
    """A lock on the manager. A holder whose process dies releases it: the next `acquire`
    returns True with `owner_died` set."""

    _typeid = "Lock"

    def __init__(self, token, manager=None):
        super().__init__(token, manager)
        self.owner_died = False
        self._threads = threading.local()

    def _current(self):
        # Each thread is an owner of its own, as with CPython's lock proxies: what one thread
        # acquires, another does not hold.
        local = self._threads
        if getattr(local, "generation", None) != _generation:
            local.token = super()._current().another_owner()
            local.generation = _generation
        return local.token

    def acquire(self, blocking=True, timeout=-1):
        wait = _wait_ms(blocking, timeout)
        try:
            answer = self._call("lock.acquire", wait)
        except RuntimeError:
            if wait is not None:
                return False  # already held by this owner: as a plain lock that is taken
            raise
        if answer == "timeout":
            return False
        self.owner_died = answer == "owner_died"
        return True

    def release(self):
        self._call("lock.release")

    def locked(self):
        return self._call("lock.state")[0]


class RLockProxy(LockProxy):
    _typeid = "RLock"


class ConditionProxy(LockProxy):
    """A condition on the manager, with a recursive lock of its own."""

    _typeid = "Condition"

    def wait(self, timeout=None):
        notified, owner_died = self._call("condition.wait", _wait_ms(True, timeout))
        self.owner_died = owner_died
        return notified

    def wait_for(self, predicate, timeout=None):
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        self._call("condition.notify", n)

    def notify_all(self):
        self._call("condition.notify", None)


class SemaphoreProxy(_Acquirable, BaseProxy):
    _typeid = "Semaphore"

    def acquire(self, blocking=True, timeout=None):
        return self._call("semaphore.acquire", _wait_ms(blocking, timeout)) != "timeout"

    def release(self):
        self._call("semaphore.release")

    def get_value(self):
        return self._call("semaphore.value")


class BoundedSemaphoreProxy(SemaphoreProxy):
    _typeid = "BoundedSemaphore"


class BarrierProxy(BaseProxy):
    """A barrier on the manager. A waiter that times out, or whose process dies, breaks it for
    everyone: `threading.BrokenBarrierError`."""

    _typeid = "Barrier"

    def __init__(self, token, manager=None, timeout=None):
        super().__init__(token, manager)
        self._timeout = timeout

    def wait(self, timeout=None):
        timeout = self._timeout if timeout is None else timeout
        answer = self._call("barrier.wait", _wait_ms(True, timeout))
        if answer == "timeout":
            raise threading.BrokenBarrierError
        return answer

    def abort(self):
        self._call("barrier.abort")

    def reset(self):
        self._call("barrier.reset")

    @property
    def parties(self):
        return self._call("barrier.state")[0]

    @property
    def n_waiting(self):
        return self._call("barrier.state")[1]

    @property
    def broken(self):
        return self._call("barrier.state")[2]


class ArrayProxy(_Sequence):
    """A fixed-length array on the manager (`manager.Array`)."""

    _typeid = "Array"

    def tolist(self):
        return self._call("list.all")


class EventProxy(BaseProxy):
    _typeid = "Event"

    def set(self):
        self._call("event.set")

    def clear(self):
        self._call("event.clear")

    def is_set(self):
        return self._call("event.is_set")

    def wait(self, timeout=None):
        return self._call("event.wait", _wait_ms(True, timeout)) != "timeout"


class QueueProxy(BaseProxy):
    _typeid = "Queue"

    def put(self, item, block=True, timeout=None):
        if self._call("queue.put", item, _wait_ms(block, timeout)) == "timeout":
            raise queue.Full

    def get(self, block=True, timeout=None):
        answer = self._call("queue.get", _wait_ms(block, timeout))
        if answer == "timeout":
            raise queue.Empty
        return answer[0]

    def put_nowait(self, item):
        self.put(item, block=False)

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self):
        return self._call("queue.state")[0]

    def empty(self):
        return self.qsize() == 0

    def full(self):
        size, limit = self._call("queue.state")[:2]
        return limit is not None and size >= limit

    def task_done(self):
        self._call("queue.task_done")

    def join(self):
        """Waits until every item put is done. Items taken by a process that then died count as
        done; CPython's manager would wait for them forever."""
        self._call("queue.join", None)


JoinableQueueProxy = QueueProxy


_PROXIES = {
    "dict": DictProxy,
    "list": ListProxy,
    "namespace": NamespaceProxy,
    "value": ValueProxy,
    "lock": LockProxy,
    "rlock": RLockProxy,
    "event": EventProxy,
    "queue": QueueProxy,
    "condition": ConditionProxy,
    "semaphore": SemaphoreProxy,
    "bounded_semaphore": BoundedSemaphoreProxy,
    "barrier": BarrierProxy,
    "array": ArrayProxy,
}


class _ForkedServer:
    """A server forked from this process, with the part of `multiprocessing.Process` the manager
    uses."""

    def __init__(self, pid):
        self.pid = pid
        self.exitcode = None

    def join(self, timeout=None):
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exitcode is None:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                return
            else:
                time.sleep(0.005)

    def is_alive(self):
        self.join(0)
        return self.exitcode is None

    def terminate(self):
        if self.exitcode is None:
            os.kill(self.pid, signal.SIGTERM)

    def kill(self):
        if self.exitcode is None:
            os.kill(self.pid, signal.SIGKILL)


def _fork_server(listener, key, alive_read, registry, initializer, initargs):
    """Forks the server: the child keeps only the socket and its end of the pipe (a descriptor of
    the parent's left open there, its connection to another manager say, would hide the
    parent's death from that manager), serves, and exits."""
    from . import _server
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            keep = {listener, alive_read}
            for fd in map(int, os.listdir("/proc/self/fd")):
                if fd > 2 and fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if initializer is not None:
                initializer(*initargs)
            _server.serve_on(listener, key, alive_read, registry)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return _ForkedServer(pid)


def _serve_process(listener, key, alive, registry, initializer, initargs):
    """The server as a `multiprocessing` process: spawn and forkserver."""
    from . import _server
    if initializer is not None:
        initializer(*initargs)
    _server.serve_process(listener, key, alive, registry)


def _private_directory():
    """A new directory only this user can enter, for the manager's socket (`tempfile.mkdtemp`'s
    rule, without its import: a fifth of this package's)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(base, f"multiproc-py-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _connect(address, authkey, codec):
    """A connection to the manager at `address`; a refusal as Python's exception (a wrong key:
    `multiprocessing.AuthenticationError`, naming the address). The key is remembered for the
    proxies of that manager that arrive in this process without it."""
    try:
        connection = _native.Connection(address, authkey, codec)
        _KEYS[address] = bytes(authkey)
        return connection
    except _native.Refused as refused:
        code, message = refused.args
        raise _error(_native.Refused(code, f"the manager at {address}: {message}")) from None


def _stop_server(conn, process, alive, address, timeout):
    """Stops a server this process started: asks it, then SIGTERM, then SIGKILL, each after
    `timeout` seconds; closes its pipe and removes its socket."""
    try:
        conn.shutdown()
    except Exception:
        pass  # gone already
    process.join(timeout)
    if process.is_alive():
        process.terminate()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
    os.close(alive)
    try:
        os.unlink(address)
        os.rmdir(os.path.dirname(address))
    except OSError:
        pass


class BaseManager:
    """A manager: `start()` runs its server in a process of its own (the Rust server of the
    `multiproc` crate), which ends with this process, even killed; `connect()` reaches one
    started elsewhere. `register()` adds types of your own, whose objects live in the server
    and are used through proxies (`multiprocessing.managers.BaseManager`'s shape)."""

    _registry = {}

    def __init__(self, address=None, authkey=None, serializer="pickle", ctx=None, *,
                 shutdown_timeout=1.0, codec=None):
        import multiprocessing
        if codec not in (None, "pickle"):
            raise ValueError(f"no codec {codec!r}: a manager's codec is None or 'pickle'")
        self._codec = codec
        self._address = address
        # As CPython's: the process's own key unless another is given.
        self._authkey = bytes(multiprocessing.current_process().authkey if authkey is None
                              else authkey)
        self._ctx = ctx or multiprocessing.get_context()
        self._shutdown_timeout = shutdown_timeout
        self._conn = None
        self._process = None
        self._finalizer = None

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None,
                 method_to_typeid=None, create_method=True):
        """Registers the type `typeid`: `callable(*args, **kwargs)` makes its objects in the
        server, `manager.<typeid>(*args, **kwargs)` returns a proxy of a new one. The proxy
        exposes `exposed` (default: `proxytype._exposed_`, else the object's public methods);
        `proxytype` (a `BaseProxy` subclass) replaces the automatic proxy. Register before
        `start()`: under spawn the server imports `callable` by name, as CPython's does."""
        if method_to_typeid:
            raise NotImplementedError(
                "method_to_typeid: a method's result is returned as a value; return a proxy "
                "made by the caller instead")
        if "_registry" not in cls.__dict__:
            cls._registry = dict(cls._registry)
        exposed = exposed or getattr(proxytype, "_exposed_", None)
        cls._registry[typeid] = (callable, None if exposed is None else tuple(exposed), proxytype)
        if create_method:
            def create(self, *args, **kwds):
                return self._create_user(typeid, args, kwds)
            create.__name__ = typeid
            setattr(cls, typeid, create)

    @property
    def address(self):
        return self._address

    def start(self, initializer=None, initargs=()):
        """Starts the server process (with this manager's start method) and connects to it."""
        import multiprocessing
        if self._conn is not None:
            raise multiprocessing.ProcessError("Already started server")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        directory = _private_directory()
        self._address = os.path.join(directory, "manager.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self._address)
        listener.listen(4096)
        alive_read, alive_write = os.pipe()
        registry = {typeid: (make, exposed)
                    for typeid, (make, exposed, _) in type(self)._registry.items()}
        if self._ctx.get_start_method() == "fork":
            # As CPython's manager under fork: the server is a fork of this process.
            self._process = _fork_server(listener.fileno(), self._authkey, alive_read,
                                         registry, initializer, initargs)
        else:
            from ._server import Descriptor
            self._process = self._ctx.Process(
                target=_serve_process, name="multiproc-manager", daemon=True,
                args=(Descriptor(listener.fileno()), self._authkey, Descriptor(alive_read),
                      registry, initializer, initargs))
            self._process.start()
        os.close(alive_read)
        listener.close()
        # The server ends when `alive_write` closes, with this process. It is stopped when this
        # manager is collected, or at exit, if nobody stopped it before: as CPython's.
        from multiprocessing import util
        self._conn = _connect(self._address, self._authkey, self._codec)
        self._finalizer = util.Finalize(
            self, _stop_server,
            args=(self._conn, self._process, alive_write, self._address, self._shutdown_timeout),
            exitpriority=0)
        return self

    def connect(self):
        """Connects to the manager at this manager's address, started elsewhere."""
        self._conn = _connect(self._address, self._authkey, self._codec)
        return self

    def shutdown(self):
        """Stops the server (if this manager started it) and waits for its process."""
        if self._finalizer is not None:
            self._finalizer()

    def join(self, timeout=None):
        if self._process is not None:
            self._process.join(timeout)

    def __enter__(self):
        if self._conn is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __reduce__(self):
        raise TypeError("a manager cannot be pickled: pass its proxies, or its address and "
                        "key to multiproc.connect")

    def _number_of_objects(self):
        return self._conn.objects()

    def _debug_info(self):
        return f"{self._number_of_objects()} objects"

    def remove_named(self, name):
        """Removes the name `name` (the object lives on while a proxy holds it); whether there
        was one."""
        return self._conn.remove_named(name)

    def _make(self, cls, kind, args, name=None):
        try:
            return cls(self._conn.create(kind, list(args), name), self)
        except _native.Refused as refused:
            raise _error(refused) from None

    def object(self, type_name, state, name=None):
        """A new object of `type_name`, a type compiled into this manager's Rust server
        (`ManagerBuilder::register`), holding `state`; with `name`, the one called so if it
        exists."""
        return self._make(ObjectProxy, "object", [type_name, state], name)

    def _create_user(self, typeid, args, kwds):
        _, _, proxytype = type(self)._registry[typeid]
        try:
            token = self._conn.create("object", [typeid, None])
            exposed = token.call("object.call", ["__new__", [list(args), dict(kwds)]])
        except _native.Refused as refused:
            raise _error(refused) from None
        if proxytype is None:
            proxytype = _auto_proxy_type(typeid, exposed)
        return proxytype(token, self)


class SyncManager(BaseManager):
    """`multiprocessing.managers.SyncManager`: a manager with the factories of shared dicts,
    lists, namespaces, values, arrays, locks, conditions, semaphores, events, barriers and
    queues; each also takes `name=` to meet other programs (Rust ones included)."""

    def dict(self, *args, name=None, **kwargs):
        d = self._make(DictProxy, "dict", [], name)
        initial = dict(*args, **kwargs)
        if initial:
            d.update(initial)
        return d

    def list(self, sequence=(), name=None):
        return self._make(ListProxy, "list", [list(sequence)], name)

    def Namespace(self, name=None, **attributes):
        ns = self._make(NamespaceProxy, "namespace", [], name)
        for key, value in attributes.items():
            setattr(ns, key, value)
        return ns

    def Value(self, typecode, value, lock=True, name=None):
        return self._make(ValueProxy, "value", [value], name)

    def Lock(self, name=None):
        return self._make(LockProxy, "lock", [], name)

    def RLock(self, name=None):
        return self._make(RLockProxy, "rlock", [], name)

    def Event(self, name=None):
        return self._make(EventProxy, "event", [], name)

    def Queue(self, maxsize=0, name=None):
        return self._make(QueueProxy, "queue", [maxsize if maxsize > 0 else None], name)

    def JoinableQueue(self, maxsize=0, name=None):
        return self.Queue(maxsize, name)

    def Condition(self, lock=None, name=None):
        if lock is not None:
            raise TypeError("a manager's Condition has a lock of its own")
        return self._make(ConditionProxy, "condition", [], name)

    def Semaphore(self, value=1, name=None):
        return self._make(SemaphoreProxy, "semaphore", [value], name)

    def BoundedSemaphore(self, value=1, name=None):
        return self._make(BoundedSemaphoreProxy, "bounded_semaphore", [value], name)

    def Barrier(self, parties, action=None, timeout=None, name=None):
        if action is not None:
            raise TypeError("Barrier(action=...) would run code in the manager: call it in the "
                            "waiter whose wait() returns 0")
        barrier = self._make(BarrierProxy, "barrier", [parties], name)
        barrier._timeout = timeout
        return barrier

    def Pool(self, *args, **kwargs):
        raise NotImplementedError(
            "manager.Pool would run pickled functions in the manager, and its server never "
            "unpickles: use multiprocessing.Pool, whose tasks may carry this manager's proxies")

    def Array(self, typecode, sequence, lock=True, name=None):
        items = [0] * sequence if isinstance(sequence, int) else list(sequence)
        return self._make(ArrayProxy, "array", [items], name)
