"""S1, dict_workers: 10 processes each store a key in a manager dict; the parent prints them.
CPython's program, with only the import changed."""
from multiprocessing import Process

from multiproc import Manager


def f(d, i):
    d[i] = 2 * i


if __name__ == "__main__":
    with Manager() as manager:
        d = manager.dict()
        workers = [Process(target=f, args=(d, i)) for i in range(10)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for k in sorted(d.keys()):
            print(f"{k}={d[k]}")
