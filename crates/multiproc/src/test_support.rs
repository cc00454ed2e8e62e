//! Running processes from `cargo test`.

/// Lets a test binary start processes. Put it once at the top of each test file that does:
///
/// ```ignore
/// multiproc::test_support!();
/// ```
///
/// A child re-executes the test binary. This line makes [`init`](crate::init) run before the test
/// harness reads its arguments, so the child runs its task and exits instead of running the tests.
/// It also marks the harness process initialized, so tests need not call `init()` themselves.
/// Without it, [`join`](crate::Process::join) reports [`JoinError::NotStarted`](crate::JoinError::NotStarted).
#[macro_export]
macro_rules! test_support {
    () => {
        // A constructor: the loader runs it before `main` (glibc passes it the arguments, which the
        // standard library has already recorded by then, so `std::env::args` works).
        #[used]
        #[unsafe(link_section = ".init_array")]
        static __MULTIPROC_TEST_SUPPORT: extern "C" fn() = {
            extern "C" fn __multiproc_test_support() {
                $crate::init();
            }
            __multiproc_test_support
        };
    };
}
