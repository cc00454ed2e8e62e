//! Who keeps each object alive: the holds of clients (one per proxy handle a process made from a
//! reply, or claimed on arrival), of names, of loans (a proxy in flight to another process), and
//! the references that containers hold. An object none of them holds is freed (`Table::free`).
//!
//! Counting alone cannot free a cycle (a list that holds a reference to itself): an object that
//! loses its last hold other than its slots' is a *suspect*, and `Table::collect_cycles` frees
//! the suspects that only unheld objects reach.
//!
//! A client's holds are counted per object, so that a client that disconnects (its process
//! died, SIGKILL included: the server sees its last connection end) gives up all of them at once.
//! A loan is a hold of its own that lasts [`Lifetimes::grace`] unless claimed first: a proxy
//! serialized by one process and not yet read by another keeps its object alive meanwhile, even
//! if its sender drops its own proxy at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long a loan lasts, by default, unless its proxy is read first.
pub(crate) const DEFAULT_LOAN_GRACE: Duration = Duration::from_secs(60);

/// What holds an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A client, through one of its proxies.
    Client(u64),
    /// Its name.
    Name,
    /// A reference in a slot of this container.
    Slot(u64),
}

/// An object's holds.
#[derive(Debug, Default)]
struct Count {
    /// Clients', names' and loans'.
    holds: u64,
    /// References in containers.
    contained: u64,
}

#[derive(Debug)]
pub(crate) struct Lifetimes {
    counts: HashMap<u64, Count>,
    /// Each client's holds, by object.
    clients: HashMap<u64, HashMap<u64, u64>>,
    /// The object of each loan not yet claimed or expired.
    loans: HashMap<u64, u64>,
    /// The loans in the order they expire (all last as long).
    expiring: VecDeque<(Instant, u64)>,
    next_loan: u64,
    pub(crate) grace: Duration,
    /// How many references each container holds, for those that hold some.
    out: HashMap<u64, u64>,
    /// Objects that only slots hold since they became so: perhaps a cycle's.
    suspects: HashSet<u64>,
}

impl Lifetimes {
    pub(crate) fn new(grace: Duration) -> Lifetimes {
        Lifetimes {
            counts: HashMap::new(),
            clients: HashMap::new(),
            loans: HashMap::new(),
            expiring: VecDeque::new(),
            next_loan: 1,
            grace,
            out: HashMap::new(),
            suspects: HashSet::new(),
        }
    }

    /// An object's holds (clients', names', loans') and the slots that hold it.
    pub(crate) fn counts(&self, object: u64) -> (u64, u64) {
        self.counts
            .get(&object)
            .map_or((0, 0), |count| (count.holds, count.contained))
    }

    /// Whether `container` holds references.
    pub(crate) fn holds_references(&self, container: u64) -> bool {
        self.out.contains_key(&container)
    }

    /// The suspects so far, forgotten.
    pub(crate) fn take_suspects(&mut self) -> Vec<u64> {
        self.suspects.drain().collect()
    }

    /// Notes `object` as a suspect if only slots hold it.
    fn suspect(&mut self, object: u64) {
        if let Some(count) = self.counts.get(&object)
            && count.holds == 0
            && count.contained > 0
        {
            self.suspects.insert(object);
        }
    }

    /// Counts a hold of `object` by `holder`.
    pub(crate) fn take(&mut self, object: u64, holder: Holder) {
        let count = self.counts.entry(object).or_default();
        match holder {
            Holder::Slot(container) => {
                count.contained += 1;
                *self.out.entry(container).or_default() += 1;
            }
            Holder::Name => count.holds += 1,
            Holder::Client(client) => {
                count.holds += 1;
                *self
                    .clients
                    .entry(client)
                    .or_default()
                    .entry(object)
                    .or_default() += 1;
            }
        }
    }

    /// Gives up a hold of `object` by `holder`: false if it had none. Sets `unheld` if nothing
    /// holds the object any more (the caller frees it).
    pub(crate) fn give_up(&mut self, object: u64, holder: Holder, unheld: &mut bool) -> bool {
        if let Holder::Client(client) = holder {
            let Some(held) = self.clients.get_mut(&client) else {
                return false;
            };
            let Some(n) = held.get_mut(&object) else {
                return false;
            };
            *n -= 1;
            if *n == 0 {
                held.remove(&object);
                if held.is_empty() {
                    self.clients.remove(&client);
                }
            }
        }
        let Some(count) = self.counts.get_mut(&object) else {
            return false;
        };
        let had = match holder {
            Holder::Slot(_) => &mut count.contained,
            Holder::Name | Holder::Client(_) => &mut count.holds,
        };
        let Some(less) = had.checked_sub(1) else {
            return false;
        };
        *had = less;
        *unheld = count.holds == 0 && count.contained == 0;
        if let Holder::Slot(container) = holder
            && let Some(n) = self.out.get_mut(&container)
        {
            *n -= 1;
            if *n == 0 {
                self.out.remove(&container);
            }
        }
        self.suspect(object);
        true
    }

    /// A new loan of `object`, held until claimed or until the grace period ends.
    pub(crate) fn lend(&mut self, object: u64, now: Instant) -> u64 {
        let loan = self.next_loan;
        self.next_loan += 1;
        self.counts.entry(object).or_default().holds += 1;
        self.loans.insert(loan, object);
        self.expiring.push_back((now + self.grace, loan));
        loan
    }

    /// Makes `loan` of `object` a hold of `client`; if the loan is no more (claimed, expired, or
    /// 0: none), `client` takes a hold of its own. The object exists (the caller checked).
    pub(crate) fn claim(&mut self, client: u64, object: u64, loan: u64) {
        if self.loans.get(&loan) == Some(&object) {
            self.loans.remove(&loan);
            // The loan's hold becomes the client's.
            if let Some(count) = self.counts.get_mut(&object) {
                count.holds -= 1;
            }
        }
        self.take(object, Holder::Client(client));
    }

    /// Ends the loans whose grace period is over: the objects they alone held.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<u64> {
        let mut unheld = Vec::new();
        while let Some(&(at, loan)) = self.expiring.front() {
            if at > now {
                break;
            }
            self.expiring.pop_front();
            if let Some(object) = self.loans.remove(&loan) {
                self.drop_holds(object, 1, &mut unheld);
            }
        }
        unheld
    }

    /// Takes `n` holds (clients', names', loans') off `object`: pushed onto `unheld` if nothing
    /// holds it any more, a suspect if only slots do.
    fn drop_holds(&mut self, object: u64, n: u64, unheld: &mut Vec<u64>) {
        let Some(count) = self.counts.get_mut(&object) else {
            return;
        };
        count.holds -= n;
        if count.holds == 0 && count.contained == 0 {
            unheld.push(object);
        }
        self.suspect(object);
    }

    /// Gives up every hold of `client` (it disconnected): the objects nothing holds any more.
    pub(crate) fn client_gone(&mut self, client: u64) -> Vec<u64> {
        let Some(held) = self.clients.remove(&client) else {
            return Vec::new();
        };
        let mut unheld = Vec::new();
        for (object, n) in held {
            self.drop_holds(object, n, &mut unheld);
        }
        unheld
    }

    /// Forgets a freed object.
    pub(crate) fn forget(&mut self, object: u64) {
        self.counts.remove(&object);
        self.suspects.remove(&object);
        self.out.remove(&object);
    }

    /// Whether `client` holds `object`.
    #[cfg(test)]
    fn holds(&self, client: u64, object: u64) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|held| held.contains_key(&object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_unheld_when_its_last_holder_lets_go() {
        let mut lifetimes = Lifetimes::new(DEFAULT_LOAN_GRACE);
        lifetimes.take(7, Holder::Client(1));
        lifetimes.take(7, Holder::Client(1));
        lifetimes.take(7, Holder::Slot(3));
        let mut unheld = false;
        assert!(lifetimes.give_up(7, Holder::Client(1), &mut unheld));
        assert!(lifetimes.give_up(7, Holder::Client(1), &mut unheld));
        assert!(!unheld, "the container still holds it");
        assert_eq!(lifetimes.take_suspects(), [7], "only a slot holds it");
        assert!(lifetimes.holds_references(3));
        assert!(!lifetimes.give_up(7, Holder::Client(1), &mut unheld));
        assert!(!lifetimes.give_up(7, Holder::Client(2), &mut unheld));
        assert!(lifetimes.give_up(7, Holder::Slot(3), &mut unheld));
        assert!(unheld);
        assert!(!lifetimes.holds_references(3));
    }

    #[test]
    fn a_gone_client_gives_up_everything_it_held() {
        let mut lifetimes = Lifetimes::new(DEFAULT_LOAN_GRACE);
        lifetimes.take(1, Holder::Client(9));
        lifetimes.take(1, Holder::Client(9));
        lifetimes.take(2, Holder::Client(9));
        lifetimes.take(2, Holder::Name);
        assert_eq!(lifetimes.client_gone(9), [1]);
        assert!(lifetimes.client_gone(9).is_empty());
    }

    #[test]
    fn a_loan_holds_until_claimed_or_expired() {
        let mut lifetimes = Lifetimes::new(Duration::from_secs(10));
        let start = Instant::now();
        lifetimes.take(5, Holder::Client(1));
        let loan = lifetimes.lend(5, start);
        let mut unheld = false;
        lifetimes.give_up(5, Holder::Client(1), &mut unheld);
        assert!(!unheld, "the loan holds it");
        lifetimes.claim(2, 5, loan);
        assert!(lifetimes.holds(2, 5));
        // A second claim of the same loan is a hold of its own.
        lifetimes.claim(3, 5, loan);
        assert!(lifetimes.expire(start + Duration::from_secs(11)).is_empty());
        assert_eq!(lifetimes.client_gone(2), []);
        assert_eq!(lifetimes.client_gone(3), [5]);

        lifetimes.take(6, Holder::Client(1));
        lifetimes.lend(6, start);
        lifetimes.give_up(6, Holder::Client(1), &mut unheld);
        assert!(!unheld);
        assert!(lifetimes.expire(start + Duration::from_secs(9)).is_empty());
        assert_eq!(lifetimes.expire(start + Duration::from_secs(10)), [6]);
    }
}
