"""S10, locked_counter: a shared int Value and a Lock; 5 named processes each take the lock, add
1, print their name and the new value. CPython's program, with only the import changed."""
from multiprocessing import Process, current_process

from multiproc import Manager


def work(counter, lock):
    with lock:
        counter.value += 1
        print(f"{current_process().name}: {counter.value}", flush=True)


if __name__ == "__main__":
    with Manager() as manager:
        counter = manager.Value("i", 0)
        lock = manager.Lock()
        workers = [Process(target=work, args=(counter, lock), name=f"worker-{i}")
                   for i in range(5)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print(f"final: {counter.value}")
