//! The server's table of objects: what each object is, the names that lead to them, the
//! containers nested inside others, and the change logs that watchers read.
//!
//! A nested container (`dict_in`, `list_in`) is an object of its own; its parent's slot holds a
//! *nested slot* referring to it (`refs`), which only the server makes. Reading the slot gives a
//! copy of the nested container's contents; removing or replacing the slot gives up the parent's
//! hold of it. A proxy that a client stores as a value is a *reference* (`refs`), read back as
//! itself.
//!
//! Every object lives while something holds it (`lifetime`): a client's proxy, its name, a loan,
//! a container's slot. The last hold given up frees it, and what it alone held with it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rmpv::Value;

use super::super::ErrorCode;
use super::super::protocol::Kind;
use super::super::protocol::wire::WireError;
use super::lifetime::{Holder, Lifetimes};
use super::refs;
use super::waits::{Barrier, Condition, Lock, Queue, Semaphore};

pub(crate) use super::dict::Dict;

/// A stored object.
pub(crate) enum Object {
    Dict(Dict),
    /// A namespace: named attributes, stored as a dict with string keys.
    Namespace(Dict),
    List(Vec<Value>),
    /// A list whose length is fixed at creation (Python: `manager.Array`).
    Array(Vec<Value>),
    Value(Value),
    /// A value of a registered user type, as its serialized state (`hosted`).
    User {
        type_name: String,
        state: Value,
        /// The chain of the call running one of its methods, if one is.
        running: Option<u64>,
    },
    Lock(Lock),
    RLock(Lock),
    Semaphore(Semaphore),
    Condition(Condition),
    Event(bool),
    Barrier(Barrier),
    Queue(Queue),
}

impl Object {
    /// Its kind, as `create` and `named` take it.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Object::Dict(_) => Kind::Dict,
            Object::Namespace(_) => Kind::Namespace,
            Object::List(_) => Kind::List,
            Object::Array(_) => Kind::Array,
            Object::Value(_) => Kind::Value,
            Object::User { .. } => Kind::Object,
            Object::Lock(_) => Kind::Lock,
            Object::RLock(_) => Kind::RLock,
            Object::Semaphore(s) if s.is_bounded() => Kind::BoundedSemaphore,
            Object::Semaphore(_) => Kind::Semaphore,
            Object::Condition(_) => Kind::Condition,
            Object::Event(_) => Kind::Event,
            Object::Barrier(_) => Kind::Barrier,
            Object::Queue(_) => Kind::Queue,
        }
    }
}

/// Containers nested deeper than this are refused: reading one copies it recursively.
pub(crate) const MAX_NESTING: usize = 32;

impl Object {
    /// Pushes onto `out` the ids its contents refer to (nested slots and stored proxies).
    fn references(&self, out: &mut Vec<u64>) {
        match self {
            Object::Dict(dict) | Object::Namespace(dict) => {
                dict.values().for_each(|(_, v)| refs::collect(v, out));
            }
            Object::List(items) | Object::Array(items) => {
                items.iter().for_each(|item| refs::collect(item, out));
            }
            Object::Value(value) => refs::collect(value, out),
            Object::Queue(queue) => queue.items().for_each(|item| refs::collect(item, out)),
            _ => {}
        }
    }
}

/// An object's last changes, numbered: a watcher asks for those after the last it saw.
#[derive(Default)]
pub(crate) struct ChangeLog {
    pub(crate) version: u64,
    pub(crate) events: VecDeque<(u64, Value)>,
    /// The events' approximate size.
    bytes: usize,
}

/// Changes kept per object, at most, in number and in approximate bytes; a watcher further
/// behind is told it missed some.
const LOG_LEN: usize = 4096;
const LOG_BYTES: usize = 16 << 20;

/// About the size of `value` once encoded.
fn approximate_size(value: &Value) -> usize {
    match value {
        Value::String(s) => 5 + s.as_bytes().len(),
        Value::Binary(b) => 5 + b.len(),
        Value::Ext(_, b) => 6 + b.len(),
        Value::Array(items) => 5 + items.iter().map(approximate_size).sum::<usize>(),
        Value::Map(entries) => {
            5 + entries
                .iter()
                .map(|(k, v)| approximate_size(k) + approximate_size(v))
                .sum::<usize>()
        }
        _ => 9,
    }
}

pub(crate) struct Table {
    next: u64,
    pub(crate) objects: HashMap<u64, Object>,
    pub(crate) names: HashMap<String, u64>,
    /// The recent changes of dicts and lists that have been watched, for watchers.
    pub(crate) logs: HashMap<u64, ChangeLog>,
    /// The objects that have been watched: only their changes are logged.
    pub(crate) watched: HashSet<u64>,
    /// The nesting depth of nested containers (absent: top level).
    depth: HashMap<u64, usize>,
    /// The largest fencing token each object has seen in a request's context.
    fences: HashMap<u64, u64>,
    /// The user object each waiting call chain waits to run a method of (`hosted`).
    pub(crate) waiting: HashMap<u64, u64>,
    /// Who holds each object.
    pub(crate) lifetimes: Lifetimes,
    /// The user types with a free hook, and the objects of theirs freed, whose hooks have not
    /// run yet (they run outside the table's lock).
    hooked: HashSet<String>,
    pub(crate) freed_users: Vec<(String, Value)>,
    /// Set when `freed_users` gets one, so that the server looks without the table's lock.
    pub(crate) any_freed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Table {
    /// Admits a request fenced with `token` on `object`: `StaleFence` if the object saw a larger
    /// token, else the object's largest token is `token` from now on.
    pub(crate) fn fenced(&mut self, object: u64, token: u64) -> Result<(), WireError> {
        let seen = self.fences.entry(object).or_insert(0);
        if token < *seen {
            return Err(WireError::new(
                ErrorCode::StaleFence,
                format!(
                    "fencing token {token} is older than {seen}, which this object has seen: \
                     a later holder of the lock wrote since"
                ),
            ));
        }
        *seen = token;
        Ok(())
    }
}

pub(crate) fn unknown(object: u64) -> WireError {
    WireError::new(ErrorCode::UnknownObject, format!("no object {object}"))
}

impl Table {
    /// An empty table, whose loans last `grace`; the freed objects of the `hooked` user types
    /// wait in `freed_users`.
    pub(crate) fn new(grace: Duration, hooked: HashSet<String>) -> Table {
        Table {
            next: 1,
            objects: HashMap::new(),
            names: HashMap::new(),
            logs: HashMap::new(),
            watched: HashSet::new(),
            fences: HashMap::new(),
            depth: HashMap::new(),
            waiting: HashMap::new(),
            lifetimes: Lifetimes::new(grace),
            hooked,
            freed_users: Vec::new(),
            any_freed: Default::default(),
        }
    }

    /// Inserts `object`, held by `holder`.
    pub(crate) fn insert(&mut self, object: Object, holder: Holder) -> u64 {
        let id = self.next;
        self.next += 1;
        self.objects.insert(id, object);
        self.lifetimes.take(id, holder);
        id
    }

    /// Inserts `object` nested in `parent` (held by its slot), within [`MAX_NESTING`].
    pub(crate) fn insert_nested(&mut self, parent: u64, object: Object) -> Result<u64, WireError> {
        let depth = self.depth.get(&parent).copied().unwrap_or(0) + 1;
        if depth > MAX_NESTING {
            return Err(WireError::new(
                ErrorCode::NestingTooDeep,
                format!("containers nest {MAX_NESTING} deep at most"),
            ));
        }
        let id = self.insert(object, Holder::Slot(parent));
        self.depth.insert(id, depth);
        Ok(id)
    }

    /// Counts a hold of `object`, which exists, by `client`.
    pub(crate) fn hold(&mut self, client: u64, object: u64) -> Result<(), WireError> {
        if !self.objects.contains_key(&object) {
            return Err(unknown(object));
        }
        self.lifetimes.take(object, Holder::Client(client));
        Ok(())
    }

    /// Makes `loan` of `object` a hold of `client` (a hold of its own if the loan is no more).
    pub(crate) fn claim(&mut self, client: u64, object: u64, loan: u64) -> Result<(), WireError> {
        if !self.objects.contains_key(&object) {
            return Err(WireError::new(
                ErrorCode::UnknownObject,
                format!(
                    "no object {object}: it was freed before this proxy arrived (nothing else \
                     held it, and its loan lasts {} s)",
                    self.lifetimes.grace.as_secs_f64()
                ),
            ));
        }
        self.lifetimes.claim(client, object, loan);
        Ok(())
    }

    /// A loan of `object`, which exists, for a proxy in flight.
    pub(crate) fn lend(&mut self, object: u64) -> Result<u64, WireError> {
        if !self.objects.contains_key(&object) {
            return Err(unknown(object));
        }
        Ok(self.lifetimes.lend(object, Instant::now()))
    }

    /// Gives up one hold of `object` by `holder`, freeing it if it was the last; false if
    /// `holder` held none.
    pub(crate) fn release(&mut self, object: u64, holder: Holder) -> bool {
        let mut unheld = false;
        let held = self.lifetimes.give_up(object, holder, &mut unheld);
        if unheld {
            self.free(object);
        }
        self.collect_cycles();
        held
    }

    /// Gives up the holds of a client that disconnected; whether that freed anything.
    pub(crate) fn client_gone(&mut self, client: u64) -> bool {
        let before = self.objects.len();
        for object in self.lifetimes.client_gone(client) {
            self.free(object);
        }
        self.collect_cycles();
        self.objects.len() < before
    }

    /// Ends the loans whose grace period is over; whether that freed anything.
    pub(crate) fn expire_loans(&mut self) -> bool {
        let before = self.objects.len();
        for object in self.lifetimes.expire(Instant::now()) {
            self.free(object);
        }
        self.collect_cycles();
        self.objects.len() < before
    }

    /// Removes the name `name`, and its hold; whether there was one.
    pub(crate) fn remove_name(&mut self, name: &str) -> bool {
        match self.names.remove(name) {
            Some(object) => {
                self.release(object, Holder::Name);
                true
            }
            None => false,
        }
    }

    /// Frees `object`, which nothing holds, and what only its slots held. (An object freed
    /// already, a cycle's member, is skipped.)
    fn free(&mut self, object: u64) {
        let mut doomed = vec![object];
        let mut slots = Vec::new();
        while let Some(id) = doomed.pop() {
            let Some(gone) = self.objects.remove(&id) else {
                continue;
            };
            self.lifetimes.forget(id);
            self.depth.remove(&id);
            self.logs.remove(&id);
            self.watched.remove(&id);
            self.fences.remove(&id);
            slots.clear();
            gone.references(&mut slots);
            if let Object::User {
                type_name, state, ..
            } = gone
                && self.hooked.contains(&type_name)
            {
                self.freed_users.push((type_name, state));
                self.any_freed
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            for &child in &slots {
                let mut unheld = false;
                self.lifetimes.give_up(child, Holder::Slot(id), &mut unheld);
                if unheld {
                    doomed.push(child);
                }
            }
        }
    }

    pub(crate) fn get_mut(&mut self, object: u64) -> Result<&mut Object, WireError> {
        self.objects.get_mut(&object).ok_or_else(|| unknown(object))
    }

    /// Counts the references in `stored`, values just stored in `container`, as its holds.
    pub(crate) fn contain(&mut self, container: u64, stored: &[&Value]) {
        let mut ids = Vec::new();
        for value in stored {
            refs::collect(value, &mut ids);
        }
        for id in ids {
            self.lifetimes.take(id, Holder::Slot(container));
        }
    }

    /// Gives up the holds of `container`'s slots that held `values` (they left it): frees what
    /// nothing else holds; whether it freed anything.
    pub(crate) fn uncontain(&mut self, container: u64, values: &[Value]) -> bool {
        if !self.lifetimes.holds_references(container) {
            return false;
        }
        let mut ids = Vec::new();
        for value in values {
            refs::collect(value, &mut ids);
        }
        let before = self.objects.len();
        for id in ids {
            let mut unheld = false;
            self.lifetimes
                .give_up(id, Holder::Slot(container), &mut unheld);
            if unheld {
                self.free(id);
            }
        }
        self.collect_cycles();
        self.objects.len() < before
    }

    /// Gives `client` a hold of each object a stored proxy in `reply` refers to: the proxies it
    /// reads are its own (see `docs/manager-protocol.md`, "Lifetime").
    pub(crate) fn hand_over(&mut self, client: u64, reply: &Value) {
        let mut ids = Vec::new();
        refs::collect_references(reply, &mut ids);
        for id in ids {
            // A stored reference holds its object: it exists.
            let _ = self.hold(client, id);
        }
    }

    /// Checks that every stored proxy in `args` refers to an object that exists, before an
    /// operation stores them.
    pub(crate) fn check_references(&self, args: &[Value]) -> Result<(), WireError> {
        let mut ids = Vec::new();
        for arg in args {
            refs::collect_references(arg, &mut ids);
        }
        match ids.into_iter().find(|id| !self.objects.contains_key(id)) {
            Some(missing) => Err(unknown(missing)),
            None => Ok(()),
        }
    }

    /// Frees the cycles among the suspects: the objects they reach through references that
    /// nothing outside reaches (no hold of a client, a name or a loan, no slot of an object
    /// outside). Trial deletion, as CPython's collector: count, for each object reached, the
    /// references from within; one held more than that is reached from outside, and so is what
    /// it reaches; the rest is garbage. Held objects bound the search (their contents are not
    /// read), so it costs the unheld part of the graph around the suspects.
    pub(crate) fn collect_cycles(&mut self) {
        loop {
            let suspects = self.lifetimes.take_suspects();
            if suspects.is_empty() {
                return;
            }
            let mut graph: HashMap<u64, Vec<u64>> = HashMap::new();
            let mut next = suspects;
            while let Some(id) = next.pop() {
                if graph.contains_key(&id) || !self.objects.contains_key(&id) {
                    continue;
                }
                if self.lifetimes.counts(id).0 > 0 {
                    continue; // held: alive, and a bound of the search
                }
                let mut out = Vec::new();
                if self.lifetimes.holds_references(id) {
                    self.objects[&id].references(&mut out);
                }
                next.extend(out.iter().copied());
                graph.insert(id, out);
            }
            let mut inside: HashMap<u64, u64> = HashMap::new();
            for out in graph.values() {
                for id in out.iter().filter(|id| graph.contains_key(id)) {
                    *inside.entry(*id).or_default() += 1;
                }
            }
            let mut alive: HashSet<u64> = HashSet::new();
            let mut reached: Vec<u64> = graph
                .keys()
                .copied()
                .filter(|id| self.lifetimes.counts(*id).1 > inside.get(id).copied().unwrap_or(0))
                .collect();
            while let Some(id) = reached.pop() {
                if alive.insert(id) {
                    reached.extend(graph[&id].iter().filter(|id| graph.contains_key(id)));
                }
            }
            let garbage: Vec<u64> = graph.into_keys().filter(|id| !alive.contains(id)).collect();
            for id in garbage {
                self.free(id);
            }
        }
    }

    /// `value` with every nested slot inside replaced by a copy of the container it refers to.
    /// Stored proxies stay as they are: a cycle of them is never followed.
    pub(crate) fn materialize(&self, value: Value) -> Value {
        match value {
            Value::Ext(..) => match refs::nested_id(&value).map(|id| self.objects.get(&id)) {
                Some(Some(Object::Dict(dict))) => Value::Map(
                    dict.values()
                        .map(|(k, v)| (k.clone(), self.materialize(v.clone())))
                        .collect(),
                ),
                Some(Some(Object::List(items))) => Value::Array(
                    items
                        .iter()
                        .map(|item| self.materialize(item.clone()))
                        .collect(),
                ),
                Some(_) => Value::Nil,
                None => value,
            },
            Value::Array(items) if items.iter().any(contains_nested) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.materialize(item))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Records `events` as changes of `object`, if it has been watched; true if it has and there
    /// were any.
    pub(crate) fn log(&mut self, object: u64, events: Vec<Value>) -> bool {
        if events.is_empty() || !self.watched.contains(&object) {
            return false;
        }
        let log = self.logs.entry(object).or_default();
        for event in events {
            log.version += 1;
            log.bytes += approximate_size(&event);
            log.events.push_back((log.version, event));
            while log.events.len() > LOG_LEN || log.bytes > LOG_BYTES {
                let Some((_, old)) = log.events.pop_front() else {
                    break;
                };
                log.bytes -= approximate_size(&old);
            }
        }
        true
    }
}

/// Whether `value` holds a nested slot (at the top, or inside the array of a reply).
fn contains_nested(value: &Value) -> bool {
    match value {
        Value::Ext(..) => refs::nested_id(value).is_some(),
        Value::Array(items) => items.iter().any(contains_nested),
        _ => false,
    }
}
