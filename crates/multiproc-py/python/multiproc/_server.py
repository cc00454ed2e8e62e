"""The manager's server process: the Rust server of the `multiproc` crate, serving the socket
its starter bound, until a client asks it to stop or its starter's process ends. It hosts the
objects of the types its program registered (`BaseManager.register`): their code is that
program's, inherited (fork) or imported by name (spawn), never code from the wire."""
import os
import threading

from . import _native


def _watch_starter(fd):
    """Ends this process when the starter's end of the pipe closes: its process ended (even
    killed), all of its threads with it."""
    while os.read(fd, 1):
        pass
    os._exit(0)


def public_methods(obj):
    """The methods of `obj` a proxy exposes by default: its callables whose names do not begin
    with `_` (CPython's rule)."""
    return [name for name in dir(obj)
            if not name.startswith("_") and callable(getattr(obj, name, None))]


class Hosted:
    """The objects of registered types this server holds, each under a random key its state
    names (a state cannot be guessed into another object's)."""

    def __init__(self, registry):
        self.registry = registry
        self.objects = {}
        self.lock = threading.Lock()

    def dispatch(self, typeid, method, state, args):
        make, exposed = self.registry[typeid]
        if method == "__new__":
            if state is not None:
                return ("failed", state, f"RuntimeError: this {typeid} was made already")
            positional, keywords = args
            try:
                obj = make(*positional, **keywords)
            except Exception as error:
                return ("failed", state, _describe(error))
            key = int.from_bytes(os.urandom(8), "big") >> 1  # 63 random bits
            with self.lock:
                self.objects[key] = obj
            exposed = list(exposed) if exposed is not None else public_methods(obj)
            return ("ok", ["obj", key, exposed, typeid], exposed)
        try:
            _, key, exposed, _ = state
            obj = self.objects[key]
        except (TypeError, ValueError, KeyError):
            return ("failed", state, f"ReferenceError: no {typeid} object behind this proxy")
        if method not in exposed:
            return ("not_exposed", state, f"method {method!r} of {typeid} is not exposed")
        positional, keywords = args
        try:
            result = getattr(obj, method)(*positional, **keywords)
        except Exception as error:
            return ("failed", state, _describe(error))
        return ("ok", state, result)

    def free(self, typeid, state):
        with self.lock:
            self.objects.pop(state[1], None)


def _describe(error):
    """`error` as a refusal's message, `Type: text`, which the client raises again as the same
    built-in exception (another type: `RemoteError` with this text)."""
    return f"{type(error).__name__}: {error}"


def serve_on(listener, key, alive_fd, registry=None):
    """Serves on the listening socket `listener` with `key`, until a client asks the server to
    stop or the starter's end of the `alive_fd` pipe closes (it is gone already: this ends at
    once). `registry`: the registered types, `{typeid: (callable, exposed)}`."""
    if listener != 3:
        if alive_fd == 3:
            alive_fd = os.dup(alive_fd)  # out of the way: 3 is the socket's
        os.dup2(listener, 3)
        os.close(listener)
    # Socket activation: the socket is descriptor 3, for this process.
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    threading.Thread(target=_watch_starter, args=(alive_fd,), daemon=True).start()
    hosted = Hosted(registry or {})
    _native.serve(key, list(hosted.registry), hosted.dispatch, hosted.free)


class Descriptor:
    """A descriptor as a `multiprocessing.Process` argument: under spawn and forkserver it
    reaches the child as a descriptor of the child's (`multiprocessing.reduction.DupFd`)."""

    def __init__(self, fd):
        self.fd = fd

    def __reduce__(self):
        from multiprocessing import reduction
        return (_descriptor_in_child, (reduction.DupFd(self.fd),))


def _descriptor_in_child(duplicate):
    return Descriptor(duplicate.detach())


def serve_process(listener, key, alive, registry):
    """The server as a `multiprocessing` process (spawn and forkserver), the socket and the pipe
    given as `Descriptor`s."""
    serve_on(listener.fd, key, alive.fd, registry)
