"""S13, lost_update: `d[k] += 1` from two processes loses updates (a read and a write, two round
trips); `d.incr(k)` runs on the server and loses none."""
from multiprocessing import Process

from multiproc import Manager

N = 10_000


def racy(d):
    for _ in range(N):
        d["n"] += 1


def exact(d):
    for _ in range(N):
        d.incr("n")


if __name__ == "__main__":
    with Manager() as m:
        for target in (racy, exact):
            d = m.dict(n=0)
            workers = [Process(target=target, args=(d,)) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            print(f"{target.__name__}: {d['n']}")
