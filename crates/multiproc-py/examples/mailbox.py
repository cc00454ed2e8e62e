"""S2, mailbox: a manager list; process A appends 100..104, one every 100 ms; process B appends
300..308, one every 60 ms; the parent prints the list every 100 ms for 600 ms. Then the same
with watch(): the parent prints each append as it happens instead of polling. CPython's
program (the first half), with only the import changed; watch() is ours."""
import time
from multiprocessing import Process

from multiproc import Manager


def produce(mailbox, first, count, every):
    for item in range(first, first + count):
        mailbox.append(item)
        time.sleep(every)


def producers(mailbox):
    return [Process(target=produce, args=(mailbox, 100, 5, 0.1)),
            Process(target=produce, args=(mailbox, 300, 9, 0.06))]


if __name__ == "__main__":
    with Manager() as manager:
        mailbox = manager.list()
        workers = producers(mailbox)
        for w in workers:
            w.start()
        for _ in range(6):
            time.sleep(0.1)
            print("polled:", list(mailbox))
        for w in workers:
            w.join()
        print("final:", list(mailbox))

        watched = manager.list()
        changes = watched.watch()  # every change from now on, by any process
        workers = producers(watched)
        for w in workers:
            w.start()
        for _ in range(14):
            change = changes.next(timeout=10)
            print("appended:", change.value)
        for w in workers:
            w.join()
        print("final:", list(watched))
