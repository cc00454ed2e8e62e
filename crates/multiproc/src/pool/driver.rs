//! The pool's driver: a thread of the parent that owns the workers. It hands chunks to workers
//! (two at most in flight each, so a worker never waits for its next chunk), routes results to
//! their jobs, and replaces a worker that exits: one that reached its task limit, or one that
//! died, whose running chunk then fails with [`PoolError::WorkerDied`] while its unstarted ones
//! go to other workers.
//!
//! It sleeps in `poll` on the workers' pipes and a wake-up socket that submitters write to, with a
//! timeout as a safety net, so nothing it waits for can be missed for long.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::PoolError;
use super::job::Job;
use super::worker::{self, Chunk, FromWorker, Init, ItemEntry, ItemResult, Packed};
use crate::channel::{Connection, RecvError, RecvTimeoutError, pipe};
use crate::process::{JoinError, Process, StartMethod};
use crate::sys;
use crate::transfer::{self, Message};

/// Chunks in flight per worker at most.
const IN_FLIGHT: usize = 2;

/// How long `poll` sleeps at most, as a safety net.
const TICK: Duration = Duration::from_millis(100);

/// How long a terminated worker gets to end after SIGTERM before SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// Work for the pool: a chunk of one job's items.
pub(crate) struct Work {
    pub(crate) job: Arc<Job>,
    /// The index of the chunk's first item in its job.
    pub(crate) first: usize,
    pub(crate) entry: ItemEntry,
    pub(crate) items: Vec<Packed>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl Work {
    fn fail(&self, error: &PoolError) {
        for i in 0..self.items.len() {
            self.job.complete(self.first + i, Err(error.clone()));
        }
    }
}

/// What submitters tell the driver.
pub(crate) enum Command {
    Submit(Work),
    /// Finish the work, then stop the workers and end.
    Close,
    /// Stop now: fail what is left, stop the workers, end.
    Terminate,
}

/// How a pool starts its workers.
pub(crate) struct Settings {
    pub(crate) processes: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<(ItemEntry, Message)>,
    pub(crate) start_method: StartMethod,
}

/// A submitter's side of the driver.
pub(crate) struct Handle {
    commands: mpsc::Sender<Command>,
    wake: OwnedFd,
}

impl Handle {
    /// Sends `command` and wakes the driver; gives it back if the driver is gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        self.commands.send(command).map_err(|e| e.0)?;
        let _ = sys::send_all(self.wake.as_fd(), &[0]);
        Ok(())
    }
}

struct Worker {
    process: Process<()>,
    conn: Connection<()>,
    in_flight: VecDeque<(u64, Work)>,
}

struct Driver {
    settings: Settings,
    commands: mpsc::Receiver<Command>,
    wake: OwnedFd,
    workers: Vec<Worker>,
    pending: VecDeque<Work>,
    next_chunk: u64,
    closing: bool,
    /// Set when no task can run any more (the initializer failed, a worker cannot start).
    broken: Option<PoolError>,
}

/// Starts the workers and the driver thread.
pub(crate) fn start(
    settings: Settings,
) -> Result<(Handle, std::thread::JoinHandle<()>), PoolError> {
    let (wake_here, wake_there) = sys::seqpacket_pair().map_err(|e| PoolError::Spawn {
        message: e.to_string(),
    })?;
    let (commands_in, commands) = mpsc::channel();
    let mut driver = Driver {
        settings,
        commands,
        wake: wake_there,
        workers: Vec::new(),
        pending: VecDeque::new(),
        next_chunk: 0,
        closing: false,
        broken: None,
    };
    for _ in 0..driver.settings.processes {
        let worker = driver.spawn_worker()?;
        driver.workers.push(worker);
    }
    let thread = std::thread::Builder::new()
        .name("multiproc-pool".into())
        .spawn(move || driver.run())
        .map_err(|e| PoolError::Spawn {
            message: e.to_string(),
        })?;
    Ok((
        Handle {
            commands: commands_in,
            wake: wake_here,
        },
        thread,
    ))
}

impl Driver {
    fn spawn_worker(&self) -> Result<Worker, PoolError> {
        let spawn_error = |e: &dyn std::fmt::Display| PoolError::Spawn {
            message: e.to_string(),
        };
        let (conn, theirs) = pipe::<()>().map_err(|e| spawn_error(&e))?;
        let process = Process::builder()
            .start_method(self.settings.start_method)
            .spawn(theirs, worker::run)
            .map_err(|e| spawn_error(&e))?;
        let (initializer, fds) = match &self.settings.initializer {
            None => (None, Vec::new()),
            Some((entry, args)) => {
                let fds = args
                    .fds
                    .iter()
                    .map(|fd| fd.try_clone())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| spawn_error(&e))?;
                let packed = Packed {
                    bytes: args.bytes.clone(),
                    fds: fds.len() as u32,
                };
                (Some((*entry, packed)), fds)
            }
        };
        let init = Init {
            initializer,
            max_tasks: self.settings.max_tasks_per_child,
        };
        let bytes = transfer::encode_plain(&init).map_err(|e| spawn_error(&e))?;
        conn.send_message(&bytes, &fds)
            .map_err(|e| spawn_error(&e))?;
        Ok(Worker {
            process,
            conn,
            in_flight: VecDeque::new(),
        })
    }

    fn run(mut self) {
        loop {
            if !self.take_commands() {
                self.terminate();
                return;
            }
            self.dispatch();
            if self.closing
                && self.pending.is_empty()
                && self.workers.iter().all(|w| w.in_flight.is_empty())
            {
                self.stop_workers();
                return;
            }
            self.wait_and_collect();
        }
    }

    /// Takes what submitters sent. False on `Terminate` (or when every handle is gone).
    fn take_commands(&mut self) -> bool {
        let mut byte = [0u8; 64];
        while let Ok(true) = sys::wait_readable(self.wake.as_fd(), Some(Duration::ZERO)) {
            if sys::recv_some(self.wake.as_fd(), &mut byte).unwrap_or(0) == 0 {
                break;
            }
        }
        loop {
            match self.commands.try_recv() {
                Ok(Command::Submit(work)) => match &self.broken {
                    Some(error) => work.fail(error),
                    None => self.pending.push_back(work),
                },
                Ok(Command::Close) => self.closing = true,
                Ok(Command::Terminate) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    /// Sends pending chunks to workers with room, the least busy first.
    fn dispatch(&mut self) {
        while !self.pending.is_empty() {
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| w.in_flight.len() < IN_FLIGHT)
                .min_by_key(|w| w.in_flight.len())
            else {
                return;
            };
            let work = self.pending.pop_front().expect("not empty");
            let id = self.next_chunk;
            self.next_chunk += 1;
            let chunk = Chunk {
                id,
                entry: work.entry,
                items: work
                    .items
                    .iter()
                    .map(|p| Packed {
                        bytes: p.bytes.clone(),
                        fds: p.fds,
                    })
                    .collect(),
            };
            let sent = transfer::encode_plain(&chunk)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    worker
                        .conn
                        .send_message(&bytes, &work.fds)
                        .map_err(|e| e.to_string())
                });
            // A worker that cannot take it is dead or dying: the chunk waits in its queue, and is
            // handled with the worker's death.
            let _ = sent;
            worker.in_flight.push_back((id, work));
        }
    }

    /// Sleeps until a worker speaks or ends, or a submitter wakes us; handles what came.
    fn wait_and_collect(&mut self) {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.workers.len() + 1);
        fds.push(PollFd::new(&self.wake, PollFlags::IN));
        for worker in &self.workers {
            fds.push(PollFd::from_borrowed_fd(worker.conn.as_fd(), PollFlags::IN));
        }
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: TICK.as_nanos() as i64,
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
        let ready: Vec<bool> = fds[1..].iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        for (index, ready) in ready.into_iter().enumerate().rev() {
            if ready {
                self.collect(index);
            }
        }
    }

    /// Reads what worker `index` sent; handles its end if it ended.
    fn collect(&mut self, index: usize) {
        loop {
            let received = self.workers[index].conn.recv_message(Some(Instant::now()));
            match received {
                Ok(message) => self.handle(index, message),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Recv(RecvError::Disconnected)) | Err(_) => {
                    self.worker_ended(index);
                    return;
                }
            }
        }
    }

    fn handle(&mut self, index: usize, message: Message) {
        let mut fds = message.fds.into_iter();
        let Ok(message) = transfer::decode_plain::<FromWorker>(message.bytes) else {
            return;
        };
        match message {
            FromWorker::Ready => {}
            FromWorker::InitFailed(reason) => {
                self.break_pool(PoolError::InitializerFailed { message: reason });
            }
            FromWorker::Done { id, results } => {
                let worker = &mut self.workers[index];
                let Some(position) = worker.in_flight.iter().position(|(i, _)| *i == id) else {
                    return;
                };
                let (_, work) = worker.in_flight.remove(position).expect("found");
                for (i, result) in results.into_iter().enumerate() {
                    let result = match result {
                        ItemResult::Returned(packed) => Ok(worker::unpack(packed, &mut fds)),
                        ItemResult::Failed(error) => Err(error),
                    };
                    work.job.complete(work.first + i, result);
                }
            }
        }
    }

    /// Worker `index` closed its pipe: it reached its task limit, or died. Replaces it.
    fn worker_ended(&mut self, index: usize) {
        let mut worker = self.workers.swap_remove(index);
        let pid = worker.process.pid();
        let status = match worker.process.join_timeout(TERMINATE_GRACE) {
            Ok(()) => None,
            Err(JoinError::Timeout) => {
                let _ = worker.process.kill();
                Some(PoolError::WorkerDied {
                    pid,
                    signal: None,
                    exit_code: None,
                })
            }
            Err(JoinError::Signaled { signal }) => Some(PoolError::WorkerDied {
                pid,
                signal: Some(signal),
                exit_code: None,
            }),
            Err(JoinError::Exited { code }) => Some(PoolError::WorkerDied {
                pid,
                signal: None,
                exit_code: Some(code),
            }),
            Err(other) => Some(PoolError::WorkerDied {
                pid,
                signal: None,
                exit_code: other_exit_code(&other),
            }),
        };
        let mut unstarted = worker.in_flight;
        if let Some(died) = &status {
            // Only the oldest chunk can have started; it fails, the others go to other workers.
            if let Some((_, running)) = unstarted.pop_front() {
                running.fail(self.broken.as_ref().unwrap_or(died));
            }
        }
        for (_, work) in unstarted.into_iter().rev() {
            self.pending.push_front(work);
        }
        if self.broken.is_some() {
            self.fail_pending();
            return;
        }
        match self.spawn_worker() {
            Ok(worker) => self.workers.push(worker),
            Err(error) if self.workers.is_empty() => self.break_pool(error),
            Err(_) => {} // the others go on
        }
    }

    /// No task can run any more: fail everything, now and later.
    fn break_pool(&mut self, error: PoolError) {
        self.broken.get_or_insert(error);
        self.fail_pending();
        for worker in &mut self.workers {
            for (_, work) in worker.in_flight.drain(..) {
                work.fail(self.broken.as_ref().expect("just set"));
            }
        }
    }

    fn fail_pending(&mut self) {
        let error = self.broken.clone().unwrap_or(PoolError::Terminated);
        for work in self.pending.drain(..) {
            work.fail(&error);
        }
    }

    /// Closes the workers' pipes (they exit when they read the end) and waits for them.
    fn stop_workers(&mut self) {
        for worker in self.workers.drain(..) {
            let Worker {
                mut process, conn, ..
            } = worker;
            drop(conn);
            if process.join_timeout(TERMINATE_GRACE * 5).is_err() {
                let _ = process.kill();
                let _ = process.join_timeout(TERMINATE_GRACE);
            }
        }
    }

    /// Stops every worker now (SIGTERM, then SIGKILL after a grace) and fails what is left.
    fn terminate(&mut self) {
        for worker in &self.workers {
            let _ = worker.process.terminate();
        }
        let deadline = Instant::now() + TERMINATE_GRACE;
        for worker in &mut self.workers {
            if worker
                .process
                .join_deadline(deadline)
                .is_err_and(|e| matches!(e, JoinError::Timeout))
            {
                let _ = worker.process.kill();
                let _ = worker.process.join_timeout(TERMINATE_GRACE);
            }
            for (_, work) in worker.in_flight.drain(..) {
                work.fail(&PoolError::Terminated);
            }
        }
        self.workers.clear();
        self.broken.get_or_insert(PoolError::Terminated);
        self.fail_pending();
        // Submissions that raced with the end fail too.
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Submit(work) = command {
                work.fail(&PoolError::Terminated);
            }
        }
    }
}

fn other_exit_code(error: &JoinError) -> Option<i32> {
    match error {
        JoinError::NotStarted { status } => match status {
            crate::process::ExitStatus::Exited(code) => Some(*code),
            crate::process::ExitStatus::Signaled(_) => None,
        },
        _ => None,
    }
}
