"""The manager's server process: the Rust server of the `multiproc` crate, serving the socket
its starter bound, until a client asks it to stop or its starter's process ends."""
import os
import sys
import threading

from . import _native


def _watch_starter(fd):
    """Ends this process when the starter's end of the pipe closes: its process ended (even
    killed), all of its threads with it."""
    while os.read(fd, 1):
        pass
    os._exit(0)


def serve_on(listener, key, alive_fd, starter):
    """Serves on the listening socket `listener` with `key`, until a client asks the server to
    stop or the starter's end of the `alive_fd` pipe closes."""
    if listener != 3:
        if alive_fd == 3:
            alive_fd = os.dup(alive_fd)  # out of the way: 3 is the socket's
        os.dup2(listener, 3)
        os.close(listener)
    # Socket activation: the socket is descriptor 3, for this process.
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    threading.Thread(target=_watch_starter, args=(alive_fd,), daemon=True).start()
    if os.getppid() != starter:
        return  # the starter is already gone
    _native.serve(key)


def main():
    """The server as a program of its own: `python -c "from multiproc._server import main;
    main()" LISTENER KEY_FD ALIVE_FD STARTER`, the key read from KEY_FD."""
    listener, key_fd, alive_fd, starter = (int(a) for a in sys.argv[1:5])
    key = b""
    while chunk := os.read(key_fd, 4096):
        key += chunk
    os.close(key_fd)
    serve_on(listener, key, alive_fd, starter)


if __name__ == "__main__":
    main()
