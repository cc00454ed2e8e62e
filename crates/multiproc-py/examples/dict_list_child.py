"""S5, dict_list_child: a child writes to a manager dict and list. CPython's program, with only
the import changed."""
from multiprocessing import Process

from multiproc import Manager


def f(d, l):
    d["1"] = "1"
    d["2"] = "2"
    l.extend([11, 22, 33])


if __name__ == "__main__":
    with Manager() as m:
        d = m.dict()
        l = m.list(range(5))
        p = Process(target=f, args=(d, l))
        p.start()
        p.join()
        print(list(l))
        print(dict(d.items()))
