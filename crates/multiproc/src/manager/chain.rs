//! Call chains: a method of a hosted object that calls its own manager, through a proxy, does so
//! within the chain of the call that runs it, so that the server can tell a call that waits for
//! itself from one that waits for another client.
//!
//! The server runs one method of an object at a time (the per-object lock of
//! `server::dispatch`), outside the table's lock, so a method may use any proxy. It runs each on a
//! chain: the caller's, if the request came from inside a method, else a new one. While a method
//! runs, its thread's requests carry that chain ([`current`]); a call whose object is running on
//! its own chain, or on a chain that waits (through others) for it, would wait forever, and is
//! refused at once with `WouldDeadlock`.
//!
//! A method's chain is its thread's: requests from threads the method starts carry none, and are
//! served as any other client's.

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The chain of the method this thread is running, if it is running one.
pub(crate) fn current() -> Option<u64> {
    CURRENT.get()
}

/// Runs `f` on `chain`: requests it makes on this thread carry it.
pub(crate) fn within<R>(chain: u64, f: impl FnOnce() -> R) -> R {
    /// Puts back the chain before, even if `f` unwinds.
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }
    let _restore = Restore(CURRENT.replace(Some(chain)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_holds_within_and_is_put_back_after() {
        assert_eq!(current(), None);
        within(7, || {
            assert_eq!(current(), Some(7));
            within(8, || assert_eq!(current(), Some(8)));
            assert_eq!(current(), Some(7));
            let unwound = std::panic::catch_unwind(|| within(9, || panic!("in a method")));
            assert!(unwound.is_err());
            assert_eq!(current(), Some(7));
        });
        assert_eq!(current(), None);
    }
}
