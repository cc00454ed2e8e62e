//! The pool's driver: a thread of the parent that owns the workers. It hands chunks to workers
//! (a few in flight each, so a worker never waits for its next chunk: see `pace`), routes results to
//! their jobs, and replaces a worker that ends: one that reached its task limit, or one that
//! died, whose running chunk then fails with [`PoolError::WorkerDied`] while its unstarted ones
//! go to other workers.
//!
//! It waits on its inbox queue, where workers put results and submitters a wake-up; every
//! [`LIVENESS_CHECK`] it also checks that its workers live, since a dead one says nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::PoolError;
use super::job::{ChunkResult, Job};
use super::pace::Pace;
use super::worker::{self, ChunkEntry, Event, Inbox, InitEntry, ToWorker, WorkerArgs};
use crate::channel::{GetTimeoutError, Queue};
use crate::process::{JoinError, Process, StartMethod};
use crate::transfer::Message;

/// How often the driver checks that its workers live (the bound on noticing a dead one).
const LIVENESS_CHECK: Duration = Duration::from_millis(10);

/// The ring of the pool's internal queues: chunks and results are small, and a pool starts
/// faster with small rings. Larger messages go beside the ring, as in any queue.
const RING: usize = 256 << 10;

/// How long a terminated worker gets to end after SIGTERM before SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// Work for the pool: a chunk of one job's items.
pub(crate) struct Work {
    pub(crate) job: Arc<Job>,
    /// The index of the chunk's first item in its job.
    pub(crate) first: usize,
    pub(crate) len: usize,
    pub(crate) entry: ChunkEntry,
    /// The encoded arguments (a `Vec<A>`).
    pub(crate) args: Message,
}

impl Work {
    fn complete(&self, outcome: Result<Message, PoolError>) {
        self.job.complete(
            self.first,
            ChunkResult {
                len: self.len,
                outcome,
            },
        );
    }

    fn fail(&self, error: &PoolError) {
        self.complete(Err(error.clone()));
    }

    /// The arguments again (their descriptors duplicated), for a worker's queue.
    fn args_copy(&self) -> std::io::Result<Message> {
        Ok(Message {
            bytes: self.args.bytes.clone(),
            fds: self
                .args
                .fds
                .iter()
                .map(|fd| fd.try_clone())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// What submitters tell the driver.
pub(crate) enum Command {
    /// Chunks to run (one submission's, sent together so that the driver wakes once).
    Submit(Vec<Work>),
    /// Finish the work, then stop the workers and end.
    Close,
    /// Stop now: fail what is left, stop the workers, end.
    Terminate,
}

/// How a pool starts its workers.
pub(crate) struct Settings {
    pub(crate) processes: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<(InitEntry, Message)>,
    pub(crate) start_method: StartMethod,
}

/// A submitter's side of the driver.
pub(crate) struct Handle {
    commands: mpsc::Sender<Command>,
    inbox: Queue<Inbox>,
}

impl Handle {
    /// Sends `command` and wakes the driver; gives it back if the driver is gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        self.commands.send(command).map_err(|e| e.0)?;
        let _ = self.inbox.put(&Inbox::Wake);
        Ok(())
    }
}

struct Worker {
    id: u64,
    process: Process<()>,
    tasks: Queue<ToWorker>,
    /// Chunks given to it, oldest first, with their id and when they were sent.
    in_flight: VecDeque<(u64, Instant, Work)>,
    pace: Pace,
    /// It said it reached its task limit.
    retiring: bool,
}

struct Driver {
    settings: Settings,
    commands: mpsc::Receiver<Command>,
    inbox: Queue<Inbox>,
    next_worker: u64,
    last_check: Instant,
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
    let inbox = Queue::with_ring(RING).map_err(|e| PoolError::Spawn {
        message: e.to_string(),
    })?;
    let (commands_in, commands) = mpsc::channel();
    let mut driver = Driver {
        settings,
        commands,
        inbox: inbox.clone(),
        next_worker: 0,
        last_check: Instant::now(),
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
            inbox,
        },
        thread,
    ))
}

impl Driver {
    fn spawn_worker(&mut self) -> Result<Worker, PoolError> {
        let spawn_error = |e: &dyn std::fmt::Display| PoolError::Spawn {
            message: e.to_string(),
        };
        let tasks = Queue::with_ring(RING).map_err(|e| spawn_error(&e))?;
        let initializer = match &self.settings.initializer {
            None => None,
            Some((entry, args)) => {
                let fds = args
                    .fds
                    .iter()
                    .map(|fd| fd.try_clone())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| spawn_error(&e))?;
                let args = Message {
                    bytes: args.bytes.clone(),
                    fds,
                };
                Some((*entry, args))
            }
        };
        let id = self.next_worker;
        self.next_worker += 1;
        let args = WorkerArgs {
            id,
            tasks: tasks.clone(),
            inbox: self.inbox.clone(),
            initializer,
            max_tasks: self.settings.max_tasks_per_child,
        };
        let process = Process::builder()
            .start_method(self.settings.start_method)
            .spawn(args, worker::run)
            .map_err(|e| spawn_error(&e))?;
        Ok(Worker {
            id,
            process,
            tasks,
            in_flight: VecDeque::new(),
            pace: Pace::default(),
            retiring: false,
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
        loop {
            match self.commands.try_recv() {
                Ok(Command::Submit(works)) => match &self.broken {
                    Some(error) => works.iter().for_each(|work| work.fail(error)),
                    None => self.pending.extend(works),
                },
                Ok(Command::Close) => self.closing = true,
                Ok(Command::Terminate) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    /// Gives pending chunks to workers with room, the least busy first.
    fn dispatch(&mut self) {
        while !self.pending.is_empty() {
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| w.in_flight.len() < w.pace.depth() && !w.retiring)
                .min_by_key(|w| w.in_flight.len())
            else {
                return;
            };
            let work = self.pending.pop_front().expect("not empty");
            let id = self.next_chunk;
            self.next_chunk += 1;
            // The queue takes a copy: the work keeps its arguments until its result is in, to
            // give them to another worker if this one ends before starting it.
            let sent = work.args_copy().map(|args| {
                worker.tasks.put(&ToWorker::Chunk {
                    id,
                    entry: work.entry,
                    args,
                })
            });
            // A worker that cannot take it is dead or dying: the chunk stays in its list, and is
            // handled with the worker's end.
            drop(sent);
            worker.in_flight.push_back((id, Instant::now(), work));
        }
    }

    /// Waits for the inbox (or the next liveness check), and handles what came.
    fn wait_and_collect(&mut self) {
        let until_check = LIVENESS_CHECK.saturating_sub(self.last_check.elapsed());
        match self.inbox.get_timeout(until_check) {
            Ok(message) => self.handle(message),
            Err(GetTimeoutError::Empty) => {}
            Err(_) => {} // a message that did not decode: nothing to route
        }
        if self.last_check.elapsed() >= LIVENESS_CHECK {
            self.last_check = Instant::now();
            self.check_workers();
        }
    }

    /// Handles the workers that ended (they said they retire, or they died).
    fn check_workers(&mut self) {
        let ended: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].retiring || !self.workers[i].process.is_alive())
            .collect();
        if ended.is_empty() {
            return;
        }
        // What they said before they ended counts first: drain the inbox.
        while let Ok(message) = self.inbox.try_get() {
            self.handle(message);
        }
        for index in ended.into_iter().rev() {
            self.worker_ended(index);
        }
    }

    fn handle(&mut self, message: Inbox) {
        let Inbox::Worker { worker, event } = message else {
            return; // a wake-up: the loop takes the commands
        };
        let Some(index) = self.workers.iter().position(|w| w.id == worker) else {
            return;
        };
        match event {
            Event::Ready => {}
            Event::Retiring => {
                self.workers[index].retiring = true;
                // Replace it at once rather than at the next check.
                self.last_check = Instant::now() - LIVENESS_CHECK;
            }
            Event::InitFailed(reason) => {
                self.break_pool(PoolError::InitializerFailed { message: reason });
            }
            Event::Done { id, outcome } => self.chunk_done(index, id, Ok(outcome)),
            Event::Failed { id, error } => self.chunk_done(index, id, Err(error)),
        }
    }

    fn chunk_done(&mut self, index: usize, id: u64, outcome: Result<Message, PoolError>) {
        let worker = &mut self.workers[index];
        let Some(position) = worker.in_flight.iter().position(|(i, ..)| *i == id) else {
            return;
        };
        let (_, sent, work) = worker.in_flight.remove(position).expect("found");
        worker.pace.chunk_done(sent);
        work.complete(outcome);
    }

    /// Worker `index` ended: it reached its task limit, or died. Replaces it.
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
            if let Some((_, _, running)) = unstarted.pop_front() {
                running.fail(self.broken.as_ref().unwrap_or(died));
            }
        }
        for (_, _, work) in unstarted.into_iter().rev() {
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
            for (_, _, work) in worker.in_flight.drain(..) {
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

    /// Tells the workers to stop and waits for them.
    fn stop_workers(&mut self) {
        for worker in &self.workers {
            let _ = worker.tasks.put(&ToWorker::Stop);
        }
        for worker in self.workers.drain(..) {
            let Worker { mut process, .. } = worker;
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
            for (_, _, work) in worker.in_flight.drain(..) {
                work.fail(&PoolError::Terminated);
            }
        }
        self.workers.clear();
        self.broken.get_or_insert(PoolError::Terminated);
        self.fail_pending();
        // Submissions that raced with the end fail too.
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Submit(works) = command {
                works
                    .iter()
                    .for_each(|work| work.fail(&PoolError::Terminated));
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
