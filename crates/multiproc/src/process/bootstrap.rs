//! `init()`, and the child's side: take the task, say it started, run it, report, exit.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::fork_server::{self, FORK_SERVER_FLAG};
use super::identity;
use super::task::{Outcome, Report, Task, TaskEntry};
use crate::sys;
use crate::transfer::{self, Message, packet};

/// The argument that marks a re-executed child: `argv = [argv0, BOOTSTRAP_FLAG, parent pid]`.
pub(crate) const BOOTSTRAP_FLAG: &str = "--multiproc-bootstrap";

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Exit code of a child that could not even read its task.
pub(super) const EXIT_NO_TASK: i32 = 70;

/// Makes this program able to start processes. **Call it first in `main`.**
///
/// In a parent, it returns at once. In a child started by [`Process::spawn`](crate::Process::spawn)
/// (this same program, executed again) it does not return: it runs the child's function and exits,
/// so the rest of `main` never runs twice. Nor does it return in a fork server
/// ([`StartMethod::ForkServer`](crate::StartMethod::ForkServer)), which forks children until its
/// parent ends. A test file calls [`test_support!`](crate::test_support)
/// instead.
///
/// ```
/// fn main() -> multiproc::Result<()> {
///     multiproc::init();
///     let child = multiproc::Process::spawn(21, |n: i32| n * 2)?;
///     assert_eq!(child.join()?, 42);
///     Ok(())
/// }
/// ```
pub fn init() {
    INITIALIZED.store(true, Ordering::Release);
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    let Some(role) = args.next() else {
        return;
    };
    let role = if role == OsStr::new(BOOTSTRAP_FLAG) {
        run_exec_child
    } else if role == OsStr::new(FORK_SERVER_FLAG) {
        fork_server::serve
    } else {
        return;
    };
    let parent = args
        .next()
        .and_then(|pid| pid.to_str()?.parse::<u32>().ok());
    role(parent)
}

pub(crate) fn is_initialized() -> bool {
    INITIALIZED.load(Ordering::Acquire)
}

/// The child started by exec: the parent's socket is on standard input.
fn run_exec_child(parent: Option<u32>) -> ! {
    let Some(parent) = parent else {
        eprintln!(
            "multiproc: {BOOTSTRAP_FLAG} without a parent pid; this program was not started by multiproc"
        );
        std::process::exit(EXIT_NO_TASK);
    };
    if !sys::arm_parent_death_signal(parent) {
        // The parent died before we could ask to follow it: follow it now.
        eprintln!(
            "multiproc: the parent process {parent} is gone; this child ends without running"
        );
        std::process::exit(EXIT_NO_TASK);
    }
    let channel = match sys::take_stdin() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("multiproc: the child could not take its bootstrap channel: {e}");
            std::process::exit(EXIT_NO_TASK);
        }
    };
    let _ = sys::replace_stdin_with_null();
    let code = run_task(channel.as_fd());
    drop(channel);
    // `exit` flushes standard output and runs exit handlers, as a normal return from main would.
    std::process::exit(code)
}

/// The child started by fork: runs the task on the copy of the forking thread.
pub(crate) fn run_forked_child(parent: u32, channel: BorrowedFd<'_>) -> i32 {
    if !sys::arm_parent_death_signal(parent) {
        return EXIT_NO_TASK;
    }
    let code = run_task(channel);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

/// Receives the task, reports that it started, runs it and sends the final report. Returns the exit code.
fn run_task(channel: BorrowedFd<'_>) -> i32 {
    let Message { bytes, fds } = match packet::recv(channel, false, usize::MAX) {
        Ok(packet::Recv::Message(message)) => message,
        Ok(_) => return EXIT_NO_TASK,
        Err(e) => {
            let _ = report(
                channel,
                Report::BootstrapFailed(format!("its task did not arrive whole: {e}")).into(),
            );
            return EXIT_NO_TASK;
        }
    };
    let task: Task = match transfer::decode_plain(bytes) {
        Ok(task) => task,
        Err(e) => {
            let _ = report(
                channel,
                Report::BootstrapFailed(format!("its task did not decode: {e}")).into(),
            );
            return EXIT_NO_TASK;
        }
    };
    identity::become_child(task.name, &task.identity);
    // A parent that dropped its handle does not want the reports, but the child still runs, as a
    // Python process object going out of scope does not stop its process. (A parent that died
    // took the child with it: the parent-death signal.)
    let _ = report(channel, Report::Started.into());
    let args = Message {
        bytes: task.args,
        fds,
    };
    let outcome = invoke(task.entry, args);
    let code = outcome.report.exit_code();
    let _ = report(channel, outcome);
    code
}

/// Runs the entry point our parent sent. It arrived on the bootstrap channel, which only our
/// parent holds (the socket on our standard input when `argv` carries BOOTSTRAP_FLAG, or the socket
/// the forking parent made): one of the two sources `EntryPoint`'s invariant allows.
fn invoke(entry: TaskEntry, args: Message) -> Outcome {
    match entry.invoke(args) {
        Ok(outcome) => outcome,
        Err(_) => Report::BootstrapFailed("the parent runs a different executable".into()).into(),
    }
}

fn report(channel: BorrowedFd<'_>, outcome: Outcome) -> std::io::Result<()> {
    let bytes = transfer::encode_plain(&outcome.report).map_err(std::io::Error::other)?;
    packet::send(
        channel,
        &Message {
            bytes,
            fds: outcome.fds,
        },
        false,
    )
}
