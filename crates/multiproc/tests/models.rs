//! The primitives' state machines against plain models: random sequences of operations, each
//! result compared with what a counter, a flag or a stack says it must be.

use multiproc::{
    AcquireTimeoutError, BoundedSemaphore, Event, Lock, RLock, ReleaseError, Semaphore,
};
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum SemaphoreOp {
    TryAcquire,
    Release,
}

fn semaphore_ops() -> impl Strategy<Value = Vec<SemaphoreOp>> {
    vec(
        prop_oneof![Just(SemaphoreOp::TryAcquire), Just(SemaphoreOp::Release)],
        0..64,
    )
}

/// Runs `ops` against a counter that starts at `initial` and, if `bound` is set, never exceeds it.
fn check_semaphore(
    initial: u32,
    bound: Option<u32>,
    ops: &[SemaphoreOp],
    try_acquire: impl Fn() -> bool,
    release: impl Fn() -> Result<(), ReleaseError>,
    value: impl Fn() -> u32,
) -> Result<(), TestCaseError> {
    let mut model = initial;
    for op in ops {
        match op {
            SemaphoreOp::TryAcquire => {
                let taken = try_acquire();
                prop_assert_eq!(taken, model > 0);
                model -= u32::from(taken);
            }
            SemaphoreOp::Release if bound.is_some_and(|bound| model >= bound) => {
                prop_assert_eq!(release(), Err(ReleaseError::TooManyReleases));
            }
            SemaphoreOp::Release => {
                prop_assert_eq!(release(), Ok(()));
                model += 1;
            }
        }
        prop_assert_eq!(value(), model);
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_bounded_semaphore_is_a_counter_between_0_and_its_bound(initial in 0u32..4, ops in semaphore_ops()) {
        let sem = BoundedSemaphore::new(initial).unwrap();
        check_semaphore(initial, Some(initial), &ops, || sem.try_acquire().is_ok(), || sem.release(), || sem.value())?;
    }

    #[test]
    fn a_semaphore_is_an_unbounded_counter(initial in 0u32..4, ops in semaphore_ops()) {
        let sem = Semaphore::new(initial).unwrap();
        check_semaphore(initial, None, &ops, || sem.try_acquire().is_ok(), || sem.release(), || sem.value())?;
    }

    /// `true`: take the lock again (a new guard); `false`: drop the newest guard.
    #[test]
    fn an_rlock_depth_is_the_number_of_guards_held(ops in vec(any::<bool>(), 0..64)) {
        let lock = RLock::new().unwrap();
        let mut guards = Vec::new();
        for take in ops {
            if take {
                guards.push(lock.try_acquire().expect("free or held by this thread"));
            } else {
                guards.pop();
            }
            prop_assert_eq!(lock.depth() as usize, guards.len());
        }
        drop(guards);
        prop_assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    }

    /// `true`: try to take the lock; `false`: drop the guard if held.
    #[test]
    fn a_lock_is_held_by_at_most_one_guard(ops in vec(any::<bool>(), 0..64)) {
        let lock = Lock::new().unwrap();
        let mut held = None;
        for take in ops {
            if take {
                match lock.try_acquire() {
                    Ok(guard) => {
                        prop_assert!(held.is_none(), "taken twice");
                        held = Some(guard);
                    }
                    Err(AcquireTimeoutError::Timeout) => prop_assert!(held.is_some(), "refused while free"),
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                }
            } else {
                held = None;
            }
            prop_assert_eq!(lock.is_locked(), held.is_some());
        }
    }

    /// `true`: set; `false`: clear.
    #[test]
    fn an_event_is_a_flag(ops in vec(any::<bool>(), 0..64)) {
        let event = Event::new().unwrap();
        for set in ops {
            if set { event.set() } else { event.clear() }
            prop_assert_eq!(event.is_set(), set);
            prop_assert_eq!(event.wait_timeout(std::time::Duration::ZERO).is_ok(), set);
            prop_assert_eq!(event.try_wait().is_ok(), set);
        }
    }
}
