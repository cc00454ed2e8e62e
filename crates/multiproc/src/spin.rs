//! Adaptive spinning: how a waiter decides between polling for a moment and sleeping in the kernel.
//!
//! A reply, an item or a free lock usually comes within microseconds, and a sleep in the kernel
//! and its wake-up cost tens of them; so a waiter polls a little before it sleeps. Whether that
//! pays depends on who else wants the CPU:
//!
//! - Nobody (an idle machine): polling costs nothing, and saves a sleep and a wake-up whenever what
//!   we wait for comes within the poll.
//! - Our own peers (more of our threads than cores: two clients and their two server threads on
//!   two cores): the peer we wait for may be waiting for our CPU. A poll that yields between its
//!   looks hands the CPU over, the peer answers, and the yield returns within microseconds.
//! - A busy process (a machine whose every core is busy): a yield hands it the CPU for a whole
//!   time slice, milliseconds. A poll that spins without yielding still pays while the thread we
//!   wait for runs on another core and answers quickly; once answers are slow (the thread waits
//!   its turn behind the busy process), a poll only burns our share of the CPU, and the good wait
//!   is a sleep in the kernel, woken by the other side, as an event loop sleeping in `epoll` does.
//!
//! A yield tells these apart: it comes back at once when nobody else wants the CPU, within
//! microseconds when a peer did, and after a time slice when a busy process did. So each place that
//! waits keeps a [`Spinner`] that learns from its polls. A poll that was off the CPU for long
//! between two looks ([`CROWDED`]) met a busy process: for a while polls spin without yielding
//! (after one, a few polls; after a streak of them, thousands), then one yields again, to ask
//! whether the machine has freed up. Meanwhile a poll that succeeded only after [`SLOW`] counts as
//! a miss. Polls yield while yields hand the CPU to peers, and spin (without a system call between
//! looks, for the quickest answer) while they come back at once, yielding now and then to notice
//! a peer or a busy process. A credit, earned by polls that ended with what they waited for and
//! spent by polls that did not, stops polling where it does not pay. A machine with one CPU never
//! polls: the other side cannot run while we do.
//!
//! A short sleep is no evidence for polling: on a busy machine the other side often answers soon
//! after we sleep *because* we gave up the CPU it was waiting for. Only a poll can tell.
//!
//! # Round trips on a busy machine
//!
//! Where what we wait for is an answer (a manager's connection, both sides; a pipe), polls stop
//! while every CPU of the machine is wanted: more tasks are runnable than it has CPUs
//! ([`cpus_to_spare`], from `/proc/loadavg`), and our own yields have not shown that the tasks
//! wanting them are only our peers; unless the other side said it runs on another CPU
//! ([`Spinner::peer_ran_on`]): then a poll spins the whole window. Why, from the CPUs a client and
//! its server thread ran on (sampled from `/proc` every 5 ms, two busy loops on a two-CPU machine):
//! when both sleep between messages on one CPU, they trade it in microseconds (85 000 queue put+get
//! pairs a second); split over the two CPUs, each beside a busy loop, every answer waits for a busy
//! loop's turn (10 000 to 25 000). A poller looks busy itself and is kept split: 40 000, steadily.
//! The scheduler puts a sleeping pair on one CPU only some of the time; a manager's client and its
//! server thread are put there on purpose ([`crate::colocate`]). A pair that stays split (two
//! processes of a pipe, which we do not move) polls: its answers come while it does, as on an idle
//! machine (a pipe's round trip split over two CPUs each busy with a loop: 140 to 175 µs sleeping,
//! 8 to 17 µs polling). Measured against polling as before (`multiproc-bench`, 10 rounds each way,
//! in turn): on the busy machine 1.5 to 2.6 times the manager's round trips and pipe round trips 8
//! to 14 times shorter; idle, the same. The cost: for about half a second after processes start or
//! end, before the scheduler puts the pair together, round trips run at a third of the polling
//! rate.
//! A queue's consumer keeps polling: its producer runs as it goes, so an item comes while the
//! consumer polls even on a busy machine (sleeping there halved a queue's throughput).
//!
//! # Implementation notes
//!
//! The state is one atomic word: the credit, the polls left that do not yield, the yielding polls
//! left without a handoff, the streak of crowded polls, and a count of waits (for the probes). A
//! success earns [`GAIN`] and a miss costs [`MISS`], so polling goes on while at least one poll in
//! five succeeds: on a CPU nobody else wants, a miss wastes nothing but power. A crowded poll costs
//! [`COST`]. Without credit, one wait in [`PROBE_EVERY`] polls anyway. A crowded poll sets the
//! polls that do not yield by [`NO_YIELD_AFTER_CROWDED`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The longest a waiter polls before it sleeps.
const WINDOW: Duration = Duration::from_micros(50);

/// The most credit a spinner holds.
const CREDIT_MAX: u64 = 64;

/// Credit earned by a wait that a poll served.
const GAIN: u64 = 4;

/// Credit spent by a poll that ended without what it waited for: on a CPU nobody else wanted it
/// cost nothing, but a place where polls never succeed should stop.
const MISS: u64 = 1;

/// Credit spent by a crowded poll.
const COST: u64 = 16;

/// A poll off the CPU this long between two looks met a busy process: our own peers answer
/// within microseconds, a busy process keeps the CPU for its time slice.
const CROWDED: Duration = Duration::from_micros(250);

/// After crowded polls, this many polls do not yield: after the first, the second, the third (and
/// any later one) of a streak. One crowded poll may be a hiccup (a process starting, the host
/// taking the CPU of a virtual machine); a streak is a busy process, and the poll that asks again
/// loses it a time slice, so it asks rarely.
const NO_YIELD_AFTER_CROWDED: [u64; 3] = [16, 256, 4096];

/// While busy processes are about (polls do not yield), a poll that succeeded only after this long
/// counts as a miss: a sleep and a wake-up would have cost no more, and the poll burnt our share
/// of the CPU.
const SLOW: Duration = Duration::from_micros(25);

/// A yield that took this long handed the CPU to another task that wanted it; a shorter one came
/// back at once, and only delayed the next look.
const HANDOFF: Duration = Duration::from_micros(3);

/// How many yielding polls in a row without a handoff a spinner keeps yielding.
const HANDOFF_MAX: u64 = 3;

/// Without recent handoffs, one poll in this many yields, to see whether a peer wants the CPU.
const YIELD_PROBE_EVERY: u64 = 16;

/// One wait in this many polls even without credit.
const PROBE_EVERY: u64 = 64;

const CREDIT_MASK: u64 = 0xff;
const QUIET_SHIFT: u32 = 8;
const QUIET_MASK: u64 = 0xffff << QUIET_SHIFT;
const HANDOFF_SHIFT: u32 = 24;
const HANDOFF_MASK: u64 = 0x3 << HANDOFF_SHIFT;
const STREAK_SHIFT: u32 = 26;
const STREAK_MASK: u64 = 0x3 << STREAK_SHIFT;
const WAITS_SHIFT: u32 = 32;

/// Whether polling pays at one place where a process waits (a connection, a queue's side), from
/// how its recent polls went: see the module's notes. Starts with full credit: polling is right on
/// an idle machine, and a busy one spends the credit in a few waits.
#[derive(Debug)]
pub(crate) struct Spinner {
    state: AtomicU64,
    /// What is waited for is an answer: it comes only once the other side has run (see the
    /// module's notes, "round trips").
    round_trips: bool,
    /// The CPU the other side said it ran on, plus one (0: it did not say): see
    /// [`peer_ran_on`](Self::peer_ran_on).
    peer_cpu: AtomicU32,
}

/// The parts of a spinner's word that polls change.
#[derive(Debug, Clone, Copy)]
struct State {
    credit: u64,
    /// Polls left that do not yield: busy processes are about.
    quiet: u64,
    /// Yielding polls left without a handoff before polls stop yielding.
    handoff: u64,
    /// Crowded polls since the last yielding poll that was not crowded (at most 3).
    streak: u64,
}

impl State {
    fn of(word: u64) -> State {
        State {
            credit: word & CREDIT_MASK,
            quiet: (word & QUIET_MASK) >> QUIET_SHIFT,
            handoff: (word & HANDOFF_MASK) >> HANDOFF_SHIFT,
            streak: (word & STREAK_MASK) >> STREAK_SHIFT,
        }
    }
}

/// How a wait should poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advice {
    /// Spin between looks: nobody else seems to want the CPU.
    Poll,
    /// Yield between looks: to hand the CPU to a peer that wants it, or to see whether one does.
    PollYielding,
    /// Spin between looks, and count a slow success as a miss: busy processes are about.
    PollCrowded,
}

/// How a poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// What it waited for came.
    Came,
    /// It came, but only after [`SLOW`], while busy processes are about.
    CameSlowly,
    /// The window passed without it.
    Missed,
    /// The caller's deadline came first: nothing learnt.
    CutShort,
    /// A busy process had the CPU meanwhile, for a long while.
    Crowded,
}

/// What a poll did between its looks, and what that showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// It spun: nothing to learn about yielding.
    Spun,
    /// It yielded, and a yield handed the CPU to a peer for a moment.
    HandedOff,
    /// It yielded, and every yield came back at once: nobody wanted the CPU.
    YieldedAlone,
}

impl Spinner {
    /// A spinner for a place that waits for what another process sends as it goes (a queue's
    /// items, room in it).
    pub(crate) const fn new() -> Spinner {
        Spinner {
            state: AtomicU64::new(CREDIT_MAX | HANDOFF_MAX << HANDOFF_SHIFT),
            round_trips: false,
            peer_cpu: AtomicU32::new(0),
        }
    }

    /// A spinner for a place that waits for an answer to what it sent, or for the next request
    /// after its answer (a manager's connection, a pipe): it does not poll while every CPU is
    /// wanted, unless its yields showed that only our own peers want them.
    pub(crate) const fn round_trips() -> Spinner {
        Spinner {
            round_trips: true,
            ..Spinner::new()
        }
    }

    /// Records where the other side of a round trip said it ran when it last sent (`None`: it
    /// did not say: a pipe's end says it in every message, a manager's client while every CPU is
    /// wanted, see [`crate::colocate`]). While every CPU is wanted, an answer from a side on
    /// another CPU is polled for, as on a machine with CPUs to spare: it runs beside a busy
    /// process there, and a sleep here would add a wake-up that waits for this CPU's busy process
    /// (a C ping-pong over a Unix socket, split over two CPUs each busy with a loop: 6 000 round
    /// trips a second sleeping, 89 000 polling for 50 µs first). One on this CPU is slept for: it
    /// can only run once this side stops. And a process held on one CPU (its affinity), which
    /// otherwise never polls, polls for a side that said it runs on another (two processes
    /// pinned to two CPUs of an idle machine: 112 to 126 µs round trips sleeping).
    pub(crate) fn peer_ran_on(&self, cpu: Option<u32>) {
        let said = cpu.map_or(0, |cpu| cpu.saturating_add(1));
        if self.peer_cpu.load(Relaxed) != said {
            self.peer_cpu.store(said, Relaxed);
        }
    }

    /// Whether the other side said it runs on another CPU than this thread's.
    fn peer_elsewhere(&self) -> bool {
        match self.peer_cpu.load(Relaxed) {
            0 => false,
            said => crate::sys::current_cpu() != Some(said - 1),
        }
    }

    /// Polls `ready` for at most [`WINDOW`] (and not past `deadline`) if polling pays here;
    /// returns whether it became true. `false` means: sleep until woken. The outcome is recorded.
    pub(crate) fn spin(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        let Some(advice) = self.advises_polling() else {
            return false;
        };
        let yields = advice == Advice::PollYielding;
        let start = Instant::now();
        let until = deadline.map_or(start + WINDOW, |d| d.min(start + WINDOW));
        let mut last = start;
        let mut crowded = false;
        let mut between = if yields {
            Between::YieldedAlone
        } else {
            Between::Spun
        };
        loop {
            let came = ready();
            let now = Instant::now();
            crowded |= now - last > CROWDED;
            last = now;
            if came || now >= until {
                let outcome = match (came, crowded) {
                    (_, true) => Outcome::Crowded,
                    (true, false) if advice == Advice::PollCrowded && now - start > SLOW => {
                        Outcome::CameSlowly
                    }
                    (true, false) => Outcome::Came,
                    (false, false) if until < start + WINDOW => Outcome::CutShort,
                    (false, false) => Outcome::Missed,
                };
                self.record(outcome, between);
                return came;
            }
            if yields {
                let before = Instant::now();
                std::thread::yield_now();
                if before.elapsed() > HANDOFF {
                    between = Between::HandedOff;
                }
            } else {
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Whether this wait should poll, and how (see the module's notes).
    fn advises_polling(&self) -> Option<Advice> {
        // One CPU for this process: the other side cannot run while we poll, unless it said it
        // runs on another (processes held on CPUs of their own).
        if !several_cpus() && !self.peer_elsewhere() {
            return None;
        }
        let before = self.state.fetch_add(1 << WAITS_SHIFT, Relaxed);
        let state = State::of(before);
        let peers_only = state.handoff > 0 && state.streak == 0;
        if self.round_trips && !peers_only && !cpus_to_spare() {
            // Every CPU is wanted: poll the whole window, without yielding and whatever the
            // credit, for a side on another CPU; sleep for one on this CPU or that did not say.
            return self.peer_elsewhere().then_some(Advice::Poll);
        }
        let waits = before >> WAITS_SHIFT;
        if state.credit == 0 && waits % PROBE_EVERY != 0 {
            return None;
        }
        if state.quiet > 0 {
            self.update(|state| State {
                quiet: state.quiet.saturating_sub(1),
                ..state
            });
            return Some(Advice::PollCrowded);
        }
        let yields = state.handoff > 0 || state.streak > 0 || waits % YIELD_PROBE_EVERY == 0;
        Some(if yields {
            Advice::PollYielding
        } else {
            Advice::Poll
        })
    }

    fn record(&self, outcome: Outcome, between: Between) {
        self.update(|state| {
            let (handoff, streak) = match between {
                Between::Spun => (state.handoff, state.streak),
                Between::HandedOff => (HANDOFF_MAX, 0),
                Between::YieldedAlone => (state.handoff.saturating_sub(1), 0),
            };
            match outcome {
                Outcome::Came => State {
                    credit: (state.credit + GAIN).min(CREDIT_MAX),
                    handoff,
                    streak,
                    ..state
                },
                Outcome::Missed | Outcome::CameSlowly => State {
                    credit: state.credit.saturating_sub(MISS),
                    handoff,
                    streak,
                    ..state
                },
                Outcome::CutShort => state,
                Outcome::Crowded => {
                    let streak = (state.streak + 1).min(NO_YIELD_AFTER_CROWDED.len() as u64);
                    State {
                        credit: state.credit.saturating_sub(COST),
                        quiet: NO_YIELD_AFTER_CROWDED[streak as usize - 1],
                        streak,
                        ..state
                    }
                }
            }
        });
    }

    /// Changes the parts of the word that polls change.
    fn update(&self, change: impl Fn(State) -> State) {
        let _ = self.state.fetch_update(Relaxed, Relaxed, |word| {
            let state = change(State::of(word));
            Some(
                word & !(CREDIT_MASK | QUIET_MASK | HANDOFF_MASK | STREAK_MASK)
                    | state.credit
                    | state.quiet << QUIET_SHIFT
                    | state.handoff << HANDOFF_SHIFT
                    | state.streak << STREAK_SHIFT,
            )
        });
    }

    /// The credit now, for tests.
    #[cfg(test)]
    fn credit(&self) -> u64 {
        self.state.load(Relaxed) & CREDIT_MASK
    }
}

/// How long [`cpus_to_spare`] trusts an answer that CPUs were to spare.
const SPARE_CHECK_EVERY: Duration = Duration::from_millis(10);

/// Whether every task that wants a CPU has one now (the machine's runnable tasks, the reader
/// included, are no more than its CPUs): then a poll takes a CPU nobody else wants, and the side
/// we wait for has one to answer on. Read from the machine at most every [`SPARE_CHECK_EVERY`]
/// (about 2 µs to read), for the whole process. Where the count cannot be read, CPUs are taken
/// to be spare, as before this check.
pub(crate) fn cpus_to_spare() -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Bit 0: the answer; the rest: when it was read, in microseconds since `EPOCH`.
    static LAST: AtomicU64 = AtomicU64::new(0);
    let epoch = *EPOCH.get_or_init(Instant::now);
    let now = epoch.elapsed().as_micros() as u64;
    let last = LAST.load(Relaxed);
    if last != 0 && now.saturating_sub(last >> 1) < SPARE_CHECK_EVERY.as_micros() as u64 {
        return last & 1 == 1;
    }
    let spare = crate::sys::runnable_tasks().is_none_or(|(running, cpus)| running <= cpus);
    LAST.store((now.max(1) << 1) | u64::from(spare), Relaxed);
    spare
}

/// Whether this machine has more than one CPU for us (so that the other side can run while we
/// poll).
fn several_cpus() -> bool {
    static SEVERAL: OnceLock<bool> = OnceLock::new();
    *SEVERAL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `waits` waits would poll, and how many of those would yield.
    fn polling(spinner: &Spinner, waits: u64) -> (u64, u64) {
        (0..waits).filter_map(|_| spinner.advises_polling()).fold(
            (0, 0),
            |(polls, yields), advice| {
                (
                    polls + 1,
                    yields + u64::from(advice == Advice::PollYielding),
                )
            },
        )
    }

    #[test]
    fn polls_that_succeed_keep_polling_and_yields_that_hand_over_keep_yielding() {
        let spinner = Spinner::new();
        for _ in 0..100 {
            spinner.record(Outcome::Came, Between::HandedOff);
        }
        assert_eq!(spinner.credit(), CREDIT_MAX);
        if several_cpus() {
            assert_eq!(polling(&spinner, 100), (100, 100));
        }
    }

    #[test]
    fn misses_stop_polling_and_then_only_probes_poll() {
        if !several_cpus() {
            return;
        }
        let spinner = Spinner::new();
        for _ in 0..CREDIT_MAX / MISS - 1 {
            spinner.record(Outcome::Missed, Between::Spun);
        }
        assert!(spinner.credit() > 0, "polling outlives a few misses");
        spinner.record(Outcome::Missed, Between::Spun);
        assert_eq!(spinner.credit(), 0);
        // The first wait of a spinner is a probe.
        assert_eq!(polling(&spinner, 10 * PROBE_EVERY).0, 10);
        spinner.record(Outcome::Came, Between::Spun);
        assert_eq!(
            polling(&spinner, 10).0,
            10,
            "a probe that succeeds resumes polling"
        );
    }

    #[test]
    fn yields_that_come_back_at_once_give_way_to_spinning_with_a_yield_now_and_then() {
        if !several_cpus() {
            return;
        }
        let spinner = Spinner::new();
        for _ in 0..HANDOFF_MAX {
            assert_eq!(polling(&spinner, 1), (1, 1));
            spinner.record(Outcome::Came, Between::YieldedAlone);
        }
        // Line the waits up with the probes.
        polling(&spinner, YIELD_PROBE_EVERY - HANDOFF_MAX);
        let waits = 10 * YIELD_PROBE_EVERY;
        assert_eq!(polling(&spinner, waits), (waits, 10));
        spinner.record(Outcome::Came, Between::HandedOff);
        assert_eq!(
            polling(&spinner, 10),
            (10, 10),
            "a yield that handed over yields again"
        );
    }

    #[test]
    fn a_crowded_poll_stops_yielding_for_a_few_polls_and_a_streak_for_thousands() {
        if !several_cpus() {
            return;
        }
        let spinner = Spinner::new();
        let refill = |spinner: &Spinner| {
            for _ in 0..CREDIT_MAX / GAIN {
                spinner.record(Outcome::Came, Between::Spun);
            }
        };
        let [first, second, long] = NO_YIELD_AFTER_CROWDED;
        spinner.record(Outcome::Crowded, Between::HandedOff);
        assert_eq!(spinner.credit(), CREDIT_MAX - COST);
        assert_eq!(polling(&spinner, first), (first, 0));
        assert_eq!(
            polling(&spinner, 1),
            (1, 1),
            "then a poll yields, to ask again"
        );
        // ... and that one was crowded too, and the next: a streak.
        spinner.record(Outcome::Crowded, Between::YieldedAlone);
        refill(&spinner);
        assert_eq!(polling(&spinner, second), (second, 0));
        assert_eq!(polling(&spinner, 1), (1, 1));
        spinner.record(Outcome::Crowded, Between::YieldedAlone);
        refill(&spinner);
        assert_eq!(polling(&spinner, long), (long, 0));
        assert_eq!(polling(&spinner, 1), (1, 1));
        // The machine freed up: a yielding poll that was not crowded ends the streak.
        spinner.record(Outcome::Came, Between::HandedOff);
        assert_eq!(polling(&spinner, 10), (10, 10));
        spinner.record(Outcome::Crowded, Between::HandedOff);
        assert_eq!(
            polling(&spinner, first),
            (first, 0),
            "a new streak starts short"
        );
    }

    #[test]
    fn among_busy_processes_slow_successes_stop_polling() {
        if !several_cpus() {
            return;
        }
        let spinner = Spinner::new();
        spinner.record(Outcome::Crowded, Between::YieldedAlone);
        assert_eq!(spinner.advises_polling(), Some(Advice::PollCrowded));
        for _ in 0..CREDIT_MAX {
            spinner.record(Outcome::CameSlowly, Between::Spun);
        }
        assert_eq!(spinner.credit(), 0);
    }

    #[test]
    fn round_trips_stop_polling_while_every_cpu_is_wanted_and_queues_poll_on() {
        if !several_cpus() {
            return;
        }
        let (_, cpus) = crate::sys::runnable_tasks().expect("/proc/loadavg is readable");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let answers = Spinner::round_trips();
        // A busy process was met (a yield lost a time slice): the tasks wanting the CPUs are not
        // only our peers.
        answers.record(Outcome::Crowded, Between::YieldedAlone);
        let (stopped, by_peer) = std::thread::scope(|s| {
            for _ in 0..=cpus {
                s.spawn(|| {
                    while !stop.load(Relaxed) {
                        std::hint::spin_loop();
                    }
                });
            }
            // The machine's count is read every 10 ms: look until it shows the busy loops.
            let deadline = Instant::now() + Duration::from_secs(20);
            let stopped = loop {
                if answers.advises_polling().is_none() {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let items = Spinner::new();
            let queue_polls = items.advises_polling().is_some();
            // On a thread held on one CPU: an answer from a side on another CPU is polled for,
            // one from a side on this CPU slept for.
            let by_peer = s
                .spawn(|| {
                    let here = crate::sys::current_cpu().expect("sched_getcpu works");
                    let own = crate::sys::CpuAffinity::of_this_thread().expect("affinity");
                    assert!(own.pin_to(here));
                    let here = crate::sys::current_cpu().expect("sched_getcpu works");
                    answers.peer_ran_on(Some(here + 1));
                    let elsewhere = answers.advises_polling();
                    answers.peer_ran_on(Some(here));
                    let beside = answers.advises_polling();
                    answers.peer_ran_on(None);
                    let unsaid = answers.advises_polling();
                    (elsewhere, beside, unsaid)
                })
                .join()
                .unwrap();
            stop.store(true, Relaxed);
            (stopped && queue_polls, by_peer)
        });
        assert!(
            stopped,
            "with more busy threads than CPUs, an answer is slept for, an item still polled for"
        );
        assert_eq!(
            by_peer,
            (Some(Advice::Poll), None, None),
            "an answer from another CPU is polled for; from this one, or unsaid, slept for"
        );
    }

    #[test]
    fn a_poll_cut_short_by_its_deadline_costs_nothing() {
        let spinner = Spinner::new();
        spinner.record(Outcome::CutShort, Between::Spun);
        assert_eq!(spinner.credit(), CREDIT_MAX);
    }

    #[test]
    fn a_poll_returns_what_it_waited_for() {
        let spinner = Spinner::new();
        let mut looks = 0;
        let came = spinner.spin(None, || {
            looks += 1;
            true
        });
        // One CPU: no poll at all, the caller sleeps.
        assert_eq!(
            (came, looks),
            if several_cpus() {
                (true, 1)
            } else {
                (false, 0)
            }
        );
        assert!(
            !spinner.spin(None, || false),
            "a poll that never sees it gives up"
        );
        assert!(!spinner.spin(Some(Instant::now()), || false));
    }
}
