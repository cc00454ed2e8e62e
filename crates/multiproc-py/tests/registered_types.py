"""Types of a program's own, registered with a manager by the tests (a module, so that a spawned
server imports them by name)."""


class Counter:
    live = 0

    def __init__(self, start=0, *, step=1):
        self.value = start
        self.step = step
        Counter.live += 1

    def __del__(self):
        Counter.live -= 1

    def add(self, by=None):
        self.value += self.step if by is None else by
        return self.value

    def fail(self, kind):
        if kind == "value":
            raise ValueError("not this value")
        raise Unusual("an exception of the program's own")

    def live_counters(self):
        return Counter.live

    def _hidden(self):
        return "hidden"


class Unusual(Exception):
    pass


def squares(n):
    for i in range(n):
        yield i * i


class Refuses:
    def __init__(self):
        raise KeyError("no such thing")
