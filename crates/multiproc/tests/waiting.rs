//! Every blocking family has the same shape: `op`, `try_op`, `op_timeout(Duration)` and
//! `op_deadline(Instant)`. Here, for each family: the try form and a passed deadline say "not
//! ready" with an error variant whose predicate answers, never `Ok(None)` or `Ok(false)`; and a
//! timeout of `Duration::MAX`, too large to add to `Instant::now()`, waits as long as it takes
//! (instead of panicking, or giving up at once) and returns what came.
//!
//! The "what came" is made ready by another thread or process a moment after the wait began. The
//! moment only makes the wait real in most runs: a correct wait passes whichever comes first.

multiproc::test_support!();

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::DEADLINE;
use multiproc::{
    AcquireTimeoutError, Array, Barrier, BarrierTimeoutError, BoundedSemaphore, Client, Condition,
    ConnectError, Event, JoinError, JoinTimeoutError, JoinableQueue, Listener, Lock, ManagerError,
    Pool, PoolError, Process, Queue, RLock, RecvTimeoutError, Semaphore, SimpleQueue, Timeout,
    Value, WaitTimeoutError, pipe,
};

/// Too far in the future to add to `Instant::now()`: means "no deadline".
const FOREVER: Duration = Duration::MAX;

/// Runs `ready` on another thread a moment from now.
fn soon(ready: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        ready();
    })
}

fn past() -> Instant {
    Instant::now()
}

/// On another thread, takes `$lock` (a clone of a manager lock: another owner) and lets it go a
/// moment later; evaluates to that thread's handle once the lock is taken.
macro_rules! hold_a_while {
    ($lock:expr) => {{
        let lock = $lock;
        let (taken, is_taken) = std::sync::mpsc::channel();
        let holder = thread::spawn(move || {
            let guard = lock.acquire().expect("the manager runs");
            taken.send(()).unwrap();
            thread::sleep(Duration::from_millis(20));
            drop(guard);
        });
        is_taken.recv().expect("the holder took the lock");
        holder
    }};
}

#[test]
fn locks() {
    let lock = Lock::new().unwrap();
    let held = lock.acquire().expect("free");
    let other = lock.clone();
    let busy = thread::spawn(move || {
        let try_form = other.try_acquire().map(drop);
        let timed = other.acquire_timeout(Duration::from_millis(1)).map(drop);
        let deadline = other.acquire_deadline(past()).map(drop);
        (
            try_form.unwrap_err().is_timeout(),
            timed.unwrap_err().is_timeout(),
            matches!(deadline, Err(AcquireTimeoutError::Timeout)),
        )
    })
    .join()
    .unwrap();
    assert_eq!(busy, (true, true, true));
    let waiter = {
        let lock = lock.clone();
        thread::spawn(move || lock.acquire_timeout(FOREVER).map(drop).is_ok())
    };
    thread::sleep(Duration::from_millis(20));
    drop(held);
    assert!(
        waiter.join().unwrap(),
        "Duration::MAX waited for the release"
    );

    let rlock = RLock::new().unwrap();
    let held = rlock.acquire().expect("free");
    let other = rlock.clone();
    let busy = thread::spawn(move || {
        (
            other.try_acquire().map(drop).unwrap_err().is_timeout(),
            other
                .acquire_deadline(past())
                .map(drop)
                .unwrap_err()
                .is_timeout(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(busy, (true, true));
    drop(rlock.acquire_timeout(FOREVER).expect("re-entrant: at once"));
    drop(held);
}

#[test]
fn value_and_array_locks() {
    let value = Value::new(1u64).unwrap();
    let held = value.lock().expect("free");
    let other = value.clone();
    let busy = thread::spawn(move || {
        (
            other.try_lock().map(drop).unwrap_err().is_timeout(),
            other
                .lock_deadline(past())
                .map(drop)
                .unwrap_err()
                .is_timeout(),
            other
                .lock_timeout(Duration::from_millis(1))
                .map(drop)
                .unwrap_err()
                .is_timeout(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(busy, (true, true, true));
    let waiter = {
        let value = value.clone();
        thread::spawn(move || value.lock_timeout(FOREVER).map(|v| *v).ok())
    };
    thread::sleep(Duration::from_millis(20));
    drop(held);
    assert_eq!(waiter.join().unwrap(), Some(1));

    let array = Array::from_slice(&[1u8, 2]).unwrap();
    let held = array.lock().expect("free");
    let other = array.clone();
    let busy = thread::spawn(move || other.try_lock().map(drop).unwrap_err().is_timeout())
        .join()
        .unwrap();
    assert!(busy);
    drop(held);
    assert_eq!(&*array.lock_timeout(FOREVER).expect("free"), &[1, 2]);
}

#[test]
fn conditions() {
    let cond = Condition::new().unwrap();
    let held = cond.acquire().expect("free");
    let other = cond.clone();
    let busy = thread::spawn(move || {
        (
            other.try_acquire().map(drop).unwrap_err().is_timeout(),
            other
                .acquire_deadline(past())
                .map(drop)
                .unwrap_err()
                .is_timeout(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(busy, (true, true));
    drop(held);

    let mut guard = cond.acquire_timeout(FOREVER).expect("free");
    assert_eq!(guard.wait_deadline(past()), Err(WaitTimeoutError::Timeout));
    assert!(
        guard
            .wait_timeout_while(Duration::from_millis(1), || true)
            .unwrap_err()
            .is_timeout()
    );
    let notifier = {
        let cond = cond.clone();
        thread::spawn(move || {
            // Holding the lock: the waiter is inside its wait once this can take it.
            let _held = cond.acquire().expect("free");
            cond.notify_all();
        })
    };
    assert_eq!(
        guard.wait_timeout(FOREVER),
        Ok(()),
        "notified, not timed out"
    );
    drop(guard);
    notifier.join().unwrap();
}

#[test]
fn semaphores_and_events() {
    let sem = Semaphore::new(0).unwrap();
    assert_eq!(sem.try_acquire(), Err(Timeout));
    assert_eq!(sem.acquire_deadline(past()), Err(Timeout));
    assert_eq!(sem.acquire_timeout(Duration::from_millis(1)), Err(Timeout));
    let other = sem.clone();
    let helper = soon(move || other.release().unwrap());
    assert_eq!(sem.acquire_timeout(FOREVER), Ok(()));
    helper.join().unwrap();

    let bounded = BoundedSemaphore::new(1).unwrap();
    bounded.try_acquire().unwrap();
    assert_eq!(bounded.try_acquire(), Err(Timeout));
    assert_eq!(bounded.acquire_deadline(past()), Err(Timeout));
    let other = bounded.clone();
    let helper = soon(move || other.release().unwrap());
    assert_eq!(bounded.acquire_timeout(FOREVER), Ok(()));
    helper.join().unwrap();

    let event = Event::new().unwrap();
    assert_eq!(event.try_wait(), Err(Timeout));
    assert_eq!(event.wait_deadline(past()), Err(Timeout));
    assert_eq!(event.wait_timeout(Duration::from_millis(1)), Err(Timeout));
    let other = event.clone();
    let helper = soon(move || other.set());
    assert_eq!(event.wait_timeout(FOREVER), Ok(()));
    assert_eq!(event.try_wait(), Ok(()));
    helper.join().unwrap();
}

#[test]
fn barriers() {
    let barrier = Barrier::new(2).unwrap();
    assert_eq!(
        barrier.wait_deadline(past()),
        Err(BarrierTimeoutError::Timeout),
        "this wait's deadline broke it"
    );
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_timeout(FOREVER),
        Err(BarrierTimeoutError::Broken)
    );
    barrier.reset();
    let other = barrier.clone();
    let helper = soon(move || {
        other.wait().expect("passes");
    });
    assert!(barrier.wait_timeout(FOREVER).is_ok());
    helper.join().unwrap();
}

#[test]
fn queues() {
    let queue = Queue::<u32>::bounded(1).unwrap();
    assert!(queue.try_get().unwrap_err().is_empty());
    assert!(queue.get_deadline(past()).unwrap_err().is_timeout());
    assert!(
        queue
            .get_timeout(Duration::from_millis(1))
            .unwrap_err()
            .is_empty()
    );
    queue.try_put(1).unwrap();
    assert!(queue.try_put(2).unwrap_err().is_full());
    assert!(queue.put_deadline(2, past()).unwrap_err().is_timeout());
    let other = queue.clone();
    let helper = soon(move || assert_eq!(other.get().unwrap(), 1));
    queue.put_timeout(2, FOREVER).expect("room came");
    helper.join().unwrap();
    assert_eq!(queue.get_timeout(FOREVER).unwrap(), 2);
    let other = queue.clone();
    let helper = soon(move || other.put(3).unwrap());
    assert_eq!(queue.get_timeout(FOREVER).unwrap(), 3);
    helper.join().unwrap();

    let jobs = JoinableQueue::<u32>::new().unwrap();
    jobs.try_join().expect("nothing put: nothing unfinished");
    jobs.put(1).unwrap();
    assert_eq!(jobs.try_join(), Err(JoinTimeoutError::Timeout));
    assert_eq!(jobs.join_deadline(past()), Err(JoinTimeoutError::Timeout));
    let other = jobs.clone();
    let helper = soon(move || {
        other.get().unwrap();
        other.task_done().unwrap();
    });
    assert_eq!(jobs.join_timeout(FOREVER), Ok(()));
    helper.join().unwrap();

    let simple = SimpleQueue::<u32>::new().unwrap();
    assert!(simple.try_get().unwrap_err().is_empty());
    assert!(simple.get_deadline(past()).unwrap_err().is_timeout());
    simple.try_put(4).unwrap();
    simple
        .put_deadline(5, past())
        .expect("room now: no wait needed");
    assert_eq!(simple.get_timeout(FOREVER).unwrap(), 4);
    assert_eq!(simple.try_get().unwrap(), 5);
    let other = simple.clone();
    let helper = soon(move || other.put(6).unwrap());
    assert_eq!(simple.get_timeout(FOREVER).unwrap(), 6);
    helper.join().unwrap();
}

#[test]
fn a_simple_queue_put_waits_for_room_in_the_kernels_buffer() {
    let simple = SimpleQueue::<Vec<u8>>::new().unwrap();
    let item = vec![0u8; 1024];
    let mut put = 0usize;
    while simple.try_put(&item).is_ok() {
        put += 1;
        assert!(put < 1 << 20, "the kernel's buffer never filled");
    }
    assert!(simple.try_put(&item).unwrap_err().is_full());
    assert!(simple.put_deadline(&item, past()).unwrap_err().is_timeout());
    // The kernel wakes a writer once most of its buffer is read: read everything.
    let other = simple.clone();
    let helper = soon(move || (0..put).for_each(|_| drop(other.get().unwrap())));
    simple.put_timeout(&item, FOREVER).expect("room came");
    helper.join().unwrap();
    assert_eq!(simple.try_get().unwrap(), item);
}

#[test]
fn pipes() {
    let (here, there) = pipe::<u32>().unwrap();
    assert!(here.try_recv().unwrap_err().is_timeout());
    assert!(matches!(
        here.recv_deadline(past()),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(here.try_recv_bytes().unwrap_err().is_timeout());
    assert!(here.recv_bytes_deadline(past()).unwrap_err().is_timeout());
    there.try_send(1).unwrap();
    there.send_deadline(2, past()).expect("room now");
    there.send_bytes_timeout(&[3], FOREVER).unwrap();
    assert_eq!(here.recv_timeout(FOREVER).unwrap(), 1);
    assert_eq!(here.try_recv().unwrap(), 2);
    assert_eq!(here.recv_bytes_timeout(FOREVER).unwrap(), [3]);
    let helper = soon(move || there.send(4).unwrap());
    assert_eq!(here.recv_timeout(FOREVER).unwrap(), 4);
    helper.join().unwrap();

    // A full buffer: the send forms wait for the reader.
    let (reader, writer) = multiproc::Pipe::one_way::<Vec<u8>>().unwrap();
    let item = vec![0u8; 1024];
    let mut sent = 0usize;
    while writer.try_send(&item).is_ok() {
        sent += 1;
        assert!(sent < 1 << 20, "the kernel's buffer never filled");
    }
    assert!(writer.try_send(&item).unwrap_err().is_timeout());
    assert!(writer.try_send_bytes(&item).unwrap_err().is_timeout());
    assert!(
        writer
            .send_deadline(&item, past())
            .unwrap_err()
            .is_timeout()
    );
    // The kernel wakes a writer once most of its buffer is read: read everything.
    let helper = soon(move || {
        (0..=sent).for_each(|_| drop(reader.recv().unwrap()));
    });
    writer.send_timeout(&item, FOREVER).expect("room came");
    helper.join().unwrap();
}

#[test]
fn listeners() {
    let listener = Listener::bind("127.0.0.1:0", b"key").unwrap();
    let address = listener.address().clone();
    assert!(listener.try_accept::<u32>().unwrap_err().is_timeout());
    assert!(matches!(
        listener.accept_deadline::<u32>(past()),
        Err(ConnectError::Timeout)
    ));
    let helper = soon(move || {
        let conn = Client::connect::<u32>(address, b"key").unwrap();
        conn.send(7).unwrap();
    });
    let conn = listener.accept_timeout::<u32>(FOREVER).unwrap();
    assert_eq!(conn.recv_timeout(DEADLINE).unwrap(), 7);
    helper.join().unwrap();
}

#[test]
fn processes() {
    let go = Event::new().unwrap();
    let mut child = Process::spawn(go.clone(), |go: Event| {
        go.wait();
        5
    })
    .unwrap();
    assert!(child.try_join().unwrap_err().is_timeout());
    assert!(matches!(
        child.join_deadline(past()),
        Err(JoinError::Timeout)
    ));
    let helper = soon(move || go.set());
    assert_eq!(child.join_timeout(FOREVER).unwrap(), 5);
    helper.join().unwrap();
}

fn wait_then_double((go, n): (Event, u32)) -> u32 {
    go.wait();
    n * 2
}

#[test]
fn pool_results() {
    let pool = Pool::new(1).unwrap();
    let go = Event::new().unwrap();
    let mut result = pool.apply_async((go.clone(), 4), wait_then_double).unwrap();
    assert!(!result.ready());
    assert_eq!(result.try_wait(), Err(Timeout));
    assert_eq!(result.wait_deadline(past()), Err(Timeout));
    assert!(result.try_get().unwrap_err().is_timeout());
    assert_eq!(result.get_deadline(past()), Err(PoolError::Timeout));
    let other = go.clone();
    let helper = soon(move || other.set());
    assert_eq!(result.wait_timeout(FOREVER), Ok(()));
    assert_eq!(result.get_timeout(FOREVER), Ok(8));
    helper.join().unwrap();

    go.clear();
    let items = [(go.clone(), 1), (go.clone(), 2)];
    let mut results = pool.imap(wait_then_double, items);
    assert_eq!(results.try_next(), Some(Err(PoolError::Timeout)));
    assert_eq!(results.next_deadline(past()), Some(Err(PoolError::Timeout)));
    let helper = soon(move || go.set());
    assert_eq!(results.next_timeout(FOREVER), Some(Ok(2)));
    assert_eq!(results.next_timeout(FOREVER), Some(Ok(4)));
    assert_eq!(results.next_timeout(FOREVER), None);
    helper.join().unwrap();
}

#[test]
fn manager_locks_semaphores_events_and_barriers() {
    let manager = multiproc::Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let holder = hold_a_while!(lock.clone());
    assert!(matches!(lock.try_acquire(), Err(ManagerError::Timeout)));
    assert!(lock.acquire_deadline(past()).unwrap_err().is_timeout());
    drop(lock.acquire_timeout(FOREVER).expect("released"));
    holder.join().unwrap();

    let rlock = manager.rlock().unwrap();
    let holder = hold_a_while!(rlock.clone());
    assert!(rlock.try_acquire().unwrap_err().is_timeout());
    drop(rlock.acquire_timeout(FOREVER).expect("released"));
    holder.join().unwrap();

    let sem = manager.semaphore(0).unwrap();
    assert!(sem.try_acquire().unwrap_err().is_timeout());
    assert!(sem.acquire_deadline(past()).unwrap_err().is_timeout());
    let other = sem.clone();
    let helper = soon(move || other.release().unwrap());
    sem.acquire_timeout(FOREVER).expect("released");
    helper.join().unwrap();

    let event = manager.event().unwrap();
    assert!(event.try_wait().unwrap_err().is_timeout());
    assert!(event.wait_deadline(past()).unwrap_err().is_timeout());
    let other = event.clone();
    let helper = soon(move || other.set().unwrap());
    event.wait_timeout(FOREVER).expect("set");
    helper.join().unwrap();

    let barrier = manager.barrier(2).unwrap();
    assert!(matches!(
        barrier.wait_deadline(past()),
        Err(ManagerError::Timeout)
    ));
    barrier.reset().unwrap();
    let other = barrier.clone();
    let helper = soon(move || {
        other.wait().expect("passes");
    });
    barrier.wait_timeout(FOREVER).expect("passes");
    helper.join().unwrap();
}

#[test]
fn manager_conditions() {
    let manager = multiproc::Manager::start().unwrap();
    let cond = manager.condition().unwrap();
    let held = cond.acquire().unwrap();
    let other = cond.clone();
    assert!(other.try_acquire().unwrap_err().is_timeout());
    assert!(other.acquire_deadline(past()).unwrap_err().is_timeout());
    drop(held);
    let mut guard = cond.acquire_timeout(FOREVER).unwrap();
    assert!(guard.wait_deadline(past()).unwrap_err().is_timeout());
    assert!(
        guard
            .wait_deadline_while(past(), || true)
            .unwrap_err()
            .is_timeout()
    );
    let notifier = thread::spawn(move || {
        // Holding the lock: the waiter is inside its wait once this can take it.
        let _held = other.acquire().unwrap();
        other.notify_all().unwrap();
    });
    guard.wait_timeout(FOREVER).expect("notified");
    drop(guard);
    notifier.join().unwrap();
}

#[test]
fn manager_queues_and_watchers() {
    let manager = multiproc::Manager::start().unwrap();
    let queue = manager.queue_bounded::<u32>(1).unwrap();
    assert!(queue.try_get().unwrap_err().is_empty());
    assert!(queue.get_deadline(past()).unwrap_err().is_timeout());
    queue.try_put(1).unwrap();
    assert!(queue.try_put(2).unwrap_err().is_full());
    assert!(queue.put_deadline(2, past()).unwrap_err().is_timeout());
    let other = queue.clone();
    let helper = soon(move || assert_eq!(other.get().unwrap(), 1));
    queue.put_timeout(2, FOREVER).expect("room came");
    helper.join().unwrap();
    assert_eq!(queue.get_timeout(FOREVER).unwrap(), 2);

    let jobs = manager.joinable_queue::<u32>().unwrap();
    jobs.try_join().unwrap();
    jobs.put(1).unwrap();
    assert!(jobs.try_join().unwrap_err().is_timeout());
    assert!(jobs.join_deadline(past()).unwrap_err().is_timeout());
    let other = jobs.clone();
    let helper = soon(move || {
        other.get().unwrap();
        other.task_done().unwrap();
    });
    jobs.join_timeout(FOREVER).expect("done");
    helper.join().unwrap();

    let list = manager.list::<u32>().unwrap();
    let mut changes = list.watch().unwrap();
    assert!(changes.try_next().unwrap_err().is_timeout());
    assert!(changes.next_deadline(past()).unwrap_err().is_timeout());
    let other = list.clone();
    let helper = soon(move || other.push(7).unwrap());
    assert_eq!(
        changes.next_timeout(FOREVER).unwrap(),
        multiproc::ListChange::Appended(7)
    );
    helper.join().unwrap();
    let dict = manager.dict::<String, u32>().unwrap();
    let mut changes = dict.watch().unwrap();
    assert!(changes.try_next().unwrap_err().is_timeout());
    dict.insert("a", 1).unwrap();
    assert_eq!(
        changes.next_timeout(FOREVER).unwrap(),
        multiproc::DictChange::Set("a".to_string(), 1)
    );
}
