"""S7, twenty_workers: 20 processes update a list, a dict and a value under a manager lock.
CPython's program, with only the import changed."""
from multiprocessing import Process

from multiproc import Manager


def work(lock, lst, d, arr, value):
    with lock:
        value.value += 1
        d[1] = "1"
        d[2] = "2"
        for i in range(len(lst)):
            lst[i] += 1


if __name__ == "__main__":
    with Manager() as m:
        lst = m.list([1, 2, 3, 4, 5])
        d = m.dict()
        arr = m.Array("i", range(10))
        value = m.Value("i", 1)
        lock = m.Lock()
        workers = [Process(target=work, args=(lock, lst, d, arr, value)) for _ in range(20)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print(list(lst))
        print(dict(d.items()))
        print(list(arr))
        print(value.value)
