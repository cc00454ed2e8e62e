//! Every public error works with `?` into `Box<dyn Error + Send + Sync>` and `anyhow`-style
//! handlers: `std::error::Error + Send + Sync + 'static`. A lock error that carries a guard
//! borrows the lock, and says how to get out: the guard (`into_guard`), or `LockFailure` without
//! it.

multiproc::test_support!();

use std::error::Error;

fn is_a_static_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn every_public_error_is_send_sync_and_static() {
    use multiproc::*;
    is_a_static_error::<multiproc::Error>();
    is_a_static_error::<ShmError>();
    is_a_static_error::<SendError>();
    is_a_static_error::<SendTimeoutError>();
    is_a_static_error::<RecvError>();
    is_a_static_error::<RecvTimeoutError>();
    is_a_static_error::<PutError>();
    is_a_static_error::<PutTimeoutError>();
    is_a_static_error::<GetError>();
    is_a_static_error::<GetTimeoutError>();
    is_a_static_error::<TaskDoneError>();
    is_a_static_error::<TasksLost>();
    is_a_static_error::<JoinTimeoutError>();
    is_a_static_error::<ConnectError>();
    is_a_static_error::<SpawnError>();
    is_a_static_error::<JoinError>();
    is_a_static_error::<ManagerError>();
    is_a_static_error::<CallError>();
    is_a_static_error::<PoolError>();
    is_a_static_error::<EncodeError>();
    is_a_static_error::<DecodeError>();
    is_a_static_error::<LockFailure>();
    is_a_static_error::<WaitError>();
    is_a_static_error::<WaitTimeoutError>();
    is_a_static_error::<ReleaseError>();
    is_a_static_error::<BarrierTimeoutError>();
    is_a_static_error::<BrokenBarrier>();
    is_a_static_error::<Timeout>();
    is_a_static_error::<IndexOutOfRange>();
    // Carrying a guard that owns nothing borrowed, they are too.
    is_a_static_error::<AcquireError<()>>();
    is_a_static_error::<AcquireTimeoutError<()>>();
}

/// A program whose errors all go up with `?`, a lock's among them.
fn run() -> Result<u32, Box<dyn Error + Send + Sync>> {
    let lock = multiproc::Lock::new()?;
    // The guard borrows the lock: out of the error, or dropped with it (`LockFailure`).
    let guard = lock.acquire().map_err(multiproc::LockFailure::from)?;
    drop(guard);
    let manager = multiproc::Manager::start()?;
    let d = manager.dict::<String, u32>()?;
    d.insert("n", 1)?;
    let shm = multiproc::SharedMemory::create(8)?;
    shm.write_at(0, &[1])?;
    let child = multiproc::Process::spawn(d.clone(), |d: multiproc::DictProxy<String, u32>| {
        // A child's function returns a Result too, its error handed back typed by `join`.
        d.incr("n", 1).map_err(|e| e.to_string())
    })?;
    let incremented: Result<u32, String> = child.join()?;
    Ok(incremented?)
}

#[test]
fn errors_go_up_with_the_question_mark() {
    assert_eq!(run().unwrap(), 2);
}
