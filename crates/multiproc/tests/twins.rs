//! A manager's proxy and its shared-memory twin agree: the same calls on each give the same
//! answers, edge cases included (a bound or a party count of 0, an index past the end, a closed
//! queue, an exchange that does not happen). What differs by nature is in the table on `Manager`
//! and is not tested as the same here.

multiproc::test_support!();

mod common;

use common::refused;

use std::time::Duration;

use multiproc::{
    Array, Barrier, ErrorCode, Event, JoinableQueue, Lock, Manager, Queue, RLock, Semaphore,
    ShmError, Value,
};

#[test]
fn no_parties_and_no_room_are_refused_by_both() {
    let manager = Manager::start().unwrap();
    assert!(matches!(
        Barrier::new(0),
        Err(ShmError::InvalidArgument { .. })
    ));
    assert_eq!(refused(manager.barrier(0)), ErrorCode::BadArguments);
    assert!(Queue::<u32>::bounded(0).is_err());
    assert_eq!(
        refused(manager.queue_bounded::<u32>(0)),
        ErrorCode::BadArguments
    );
    assert_eq!(
        refused(manager.joinable_queue_bounded::<u32>(0)),
        ErrorCode::BadArguments
    );
    // A party count the twin takes, the proxy takes.
    assert_eq!(Barrier::new(3).unwrap().parties(), 3);
    assert_eq!(manager.barrier(3).unwrap().parties().unwrap(), 3);
}

#[test]
fn an_index_past_the_end_reads_none_and_writes_an_error() {
    let manager = Manager::start().unwrap();
    let twin = Array::from_slice(&[1, 2, 3]).unwrap();
    let proxy = manager.array(&[1, 2, 3]).unwrap();
    assert_eq!(twin.get(3), None);
    assert_eq!(proxy.get(3).unwrap(), None);
    assert_eq!(twin.get(1), Some(2));
    assert_eq!(proxy.get(1).unwrap(), Some(2));
    assert!(twin.set(3, 0).is_err());
    assert_eq!(refused(proxy.set(3, 0)), ErrorCode::IndexOutOfRange);
    assert_eq!(twin.len(), proxy.len().unwrap());
}

#[test]
fn a_value_adds_and_exchanges_the_same_way() {
    let manager = Manager::start().unwrap();
    let twin = Value::new(10i64).unwrap();
    let proxy = manager.value(&10i64).unwrap();
    assert_eq!(twin.fetch_add(5), 10);
    assert_eq!(proxy.fetch_add(5).unwrap(), 10);
    assert_eq!(twin.compare_exchange(15, 0), Ok(15));
    assert_eq!(proxy.compare_exchange(&15, &0).unwrap(), Ok(15));
    assert_eq!(twin.compare_exchange(15, 1), Err(0));
    assert_eq!(proxy.compare_exchange(&15, &1).unwrap(), Err(0));
    assert_eq!(twin.get(), proxy.get().unwrap());
}

#[test]
fn a_closed_queue_refuses_puts_and_gives_what_is_left() {
    let manager = Manager::start().unwrap();
    let twin = Queue::<u32>::new().unwrap();
    let proxy = manager.queue::<u32>().unwrap();
    twin.put(1).unwrap();
    proxy.put(1).unwrap();
    twin.close();
    proxy.close().unwrap();
    assert!(twin.is_closed());
    assert!(proxy.is_closed().unwrap());
    assert!(twin.put(2).is_err());
    assert_eq!(refused(proxy.put(2)), ErrorCode::Closed);
    assert_eq!(twin.get().unwrap(), 1);
    assert_eq!(proxy.get().unwrap(), 1);
    assert!(matches!(twin.get(), Err(multiproc::GetError::Closed)));
    assert_eq!(refused(proxy.get()), ErrorCode::Closed);
    assert_eq!(twin.len(), proxy.len().unwrap());
}

#[test]
fn a_bounded_queue_says_full_and_empty() {
    let manager = Manager::start().unwrap();
    let twin = Queue::<u32>::bounded(1).unwrap();
    let proxy = manager.queue_bounded::<u32>(1).unwrap();
    assert_eq!(twin.max_items(), proxy.max_items().unwrap());
    assert!(twin.try_get().unwrap_err().is_empty());
    assert!(proxy.try_get().unwrap_err().is_empty());
    twin.try_put(1).unwrap();
    proxy.try_put(1).unwrap();
    assert!(twin.is_full() && proxy.is_full().unwrap());
    assert!(twin.try_put(2).unwrap_err().is_full());
    assert!(proxy.try_put(2).unwrap_err().is_full());
    let short = Duration::from_millis(1);
    assert!(twin.put_timeout(2, short).unwrap_err().is_timeout());
    assert!(proxy.put_timeout(2, short).unwrap_err().is_timeout());
}

#[test]
fn a_joinable_queue_counts_unfinished_items() {
    let manager = Manager::start().unwrap();
    let twin = JoinableQueue::<u32>::new().unwrap();
    let proxy = manager.joinable_queue::<u32>().unwrap();
    twin.put(1).unwrap();
    proxy.put(1).unwrap();
    assert_eq!(twin.unfinished(), 1);
    assert_eq!(proxy.unfinished().unwrap(), 1);
    assert!(twin.try_join().is_err());
    assert!(proxy.try_join().unwrap_err().is_timeout());
    twin.get().unwrap();
    proxy.get().unwrap();
    twin.task_done().unwrap();
    proxy.task_done().unwrap();
    twin.try_join().unwrap();
    proxy.try_join().unwrap();
    assert!(twin.task_done().is_err());
    assert_eq!(refused(proxy.task_done()), ErrorCode::TooManyTaskDone);
}

#[test]
fn locks_tell_who_holds_them() {
    let manager = Manager::start().unwrap();
    let twin = Lock::new().unwrap();
    let proxy = manager.lock().unwrap();
    assert!(!twin.is_locked() && !proxy.is_locked().unwrap());
    let (held, held_too) = (twin.acquire().unwrap(), proxy.acquire().unwrap());
    assert!(twin.is_locked() && proxy.is_locked().unwrap());
    drop((held, held_too));

    let twin = RLock::new().unwrap();
    let proxy = manager.rlock().unwrap();
    let (a, b) = (twin.acquire().unwrap(), twin.acquire().unwrap());
    let (c, d) = (proxy.acquire().unwrap(), proxy.acquire().unwrap());
    assert_eq!(twin.depth(), 2);
    assert_eq!(proxy.depth().unwrap(), 2);
    std::mem::forget(b);
    std::mem::forget(d);
    twin.release().unwrap();
    proxy.release().unwrap();
    assert_eq!(twin.depth(), 1);
    assert_eq!(proxy.depth().unwrap(), 1);
    drop((a, c));
    assert!(twin.release().is_err());
    assert_eq!(refused(proxy.release()), ErrorCode::NotOwner);
}

#[test]
fn semaphores_and_events_say_timeout() {
    let manager = Manager::start().unwrap();
    let twin = Semaphore::new(1).unwrap();
    let proxy = manager.semaphore(1).unwrap();
    twin.try_acquire().unwrap();
    proxy.try_acquire().unwrap();
    assert!(twin.try_acquire().is_err());
    assert!(proxy.try_acquire().unwrap_err().is_timeout());
    assert_eq!(twin.value(), proxy.value().unwrap());

    let twin = Event::new().unwrap();
    let proxy = manager.event().unwrap();
    assert!(twin.try_wait().is_err());
    assert!(proxy.try_wait().unwrap_err().is_timeout());
    twin.set();
    proxy.set().unwrap();
    twin.try_wait().unwrap();
    proxy.try_wait().unwrap();
}
