//! The manager's server: accepts connections, authenticates them, and runs requests on a table
//! of objects. One thread per connection, at most [`MAX_CONNECTIONS`]; a connection that has not
//! authenticated within the handshake deadline is closed.
//!
//! Objects hold MessagePack values: the server never runs code that came over the wire, it only
//! stores, compares and adds values.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rmpv::Value;

use super::frame::{self, FrameError};
use super::net::{Listening, Stream};
use super::shared::{MethodCall, TypeEntry};
use super::wire::{self, Request, Response, WireError};
use crate::channel::auth::{self, Framing};
use crate::sys;

/// Connections served at once, at most.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// The payload cap before authentication (the handshake itself has fixed sizes; this is for the
/// first frame after it).
const MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME;

/// A stored object.
enum Object {
    /// Keys are the MessagePack encoding of the key value.
    Dict(HashMap<Vec<u8>, (Value, Value)>),
    Lock(LockState),
    Queue(QueueState),
    List(Vec<Value>),
    /// A list whose length is fixed at creation (Python: `manager.Array`).
    Array(Vec<Value>),
    /// A value of a registered user type, as its serialized state.
    User {
        type_name: String,
        state: Value,
    },
    Value(Value),
}

struct QueueState {
    items: std::collections::VecDeque<Value>,
    /// 0: no limit.
    max_items: usize,
}

/// A lock belongs to the connection that took it. When that connection ends (its process died,
/// say), the lock is released with `owner_died` set, and the next taker is told.
#[derive(Default)]
struct LockState {
    owner: Option<u64>,
    owner_died: bool,
}

#[derive(Default)]
struct Table {
    next: u64,
    objects: HashMap<u64, Object>,
    names: HashMap<String, u64>,
    /// The recent changes of dicts and lists, for watchers.
    logs: HashMap<u64, ChangeLog>,
}

/// An object's last changes, numbered: a watcher asks for those after the last it saw.
#[derive(Default)]
struct ChangeLog {
    version: u64,
    events: std::collections::VecDeque<(u64, Value)>,
}

/// Changes kept per object; a watcher further behind is told it missed some.
const LOG_LEN: usize = 4096;

/// The operations that change a dict or a list: each is logged as `[op, args...]`.
fn changes(op: &str) -> bool {
    matches!(
        op,
        "dict.set"
            | "dict.del"
            | "dict.pop"
            | "dict.setdefault"
            | "dict.incr"
            | "dict.compare_and_swap"
            | "dict.update"
            | "list.set"
            | "list.append"
            | "list.extend"
            | "list.insert"
            | "list.pop"
            | "list.remove"
            | "list.incr"
    )
}

struct Server {
    table: Mutex<Table>,
    /// Notified when a lock is released or a queue gets an item or room.
    changed: Condvar,
    next_connection: AtomicU64,
    authkey: Vec<u8>,
    connections: AtomicUsize,
    /// A clone of each open connection's stream, to close them all at shutdown.
    open: Mutex<HashMap<u64, Stream>>,
    /// The registered user types, by name.
    types: HashMap<String, TypeEntry>,
    /// Set by a `shutdown` request; the accept loop ends at its next wake-up.
    stopping: std::sync::atomic::AtomicBool,
}

/// Serves on `listener` until a `shutdown` request; then closes every connection and returns.
pub(crate) fn serve(listener: Listening, authkey: Vec<u8>, types: Vec<(String, TypeEntry)>) {
    let address = listener.address().ok();
    let server = Arc::new(Server {
        table: Mutex::new(Table {
            next: 1,
            ..Table::default()
        }),
        changed: Condvar::new(),
        next_connection: AtomicU64::new(1),
        authkey,
        connections: AtomicUsize::new(0),
        open: Mutex::new(HashMap::new()),
        types: types.into_iter().collect(),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    loop {
        let accepted = listener.accept();
        if server.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = accepted else {
            // Out of descriptors, say: let some connections end before accepting again.
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        if server.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            server.connections.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: the client sees the connection closed
        }
        let server = server.clone();
        let connection = server.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            server.lock_open().insert(connection, clone);
        }
        let server = server.clone();
        let address = address.clone();
        let spawned = std::thread::Builder::new()
            .name("multiproc-manager-conn".into())
            .spawn(move || {
                server.connection(connection, stream);
                server.lock_open().remove(&connection);
                server.release_all(connection);
                server.connections.fetch_sub(1, Ordering::SeqCst);
                if server.stopping.load(Ordering::SeqCst)
                    && let Some(address) = &address
                {
                    // Wake the accept loop, which then sees `stopping`.
                    let _ = Stream::connect(address);
                }
            });
        if spawned.is_err() {
            // No thread: the stream was moved into the closure and is dropped with it.
            continue;
        }
    }
    // Close every connection: their threads end at their next read.
    for (_, stream) in server.lock_open().drain() {
        let _ = rustix::net::shutdown(&stream, rustix::net::Shutdown::Both);
    }
}

impl Server {
    /// Releases the locks `connection` held, marking their holder dead, and wakes the waiters.
    fn release_all(&self, connection: u64) {
        let mut table = self.lock_table();
        let mut released = false;
        for object in table.objects.values_mut() {
            if let Object::Lock(lock) = object
                && lock.owner == Some(connection)
            {
                lock.owner = None;
                lock.owner_died = true;
                released = true;
            }
        }
        if released {
            self.changed.notify_all();
        }
    }

    fn lock_open(&self) -> MutexGuard<'_, HashMap<u64, Stream>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits, the table released, for a change (a lock released, a queue changed, a dict or
    /// list changed) until `deadline`; `None` once it has passed.
    fn wait_changed<'a>(
        &'a self,
        table: MutexGuard<'a, Table>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, Table>> {
        match deadline {
            None => Some(self.changed.wait(table).unwrap_or_else(|e| e.into_inner())),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                Some(
                    self.changed
                        .wait_timeout(table, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0,
                )
            }
        }
    }

    fn lock_table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection(&self, connection: u64, stream: Stream) {
        // On a Unix socket, the same user only, whatever key the peer holds.
        if stream.is_unix() {
            match sys::peer_uid(stream.as_fd()) {
                Ok(uid) if uid == sys::own_uid() => {}
                _ => return,
            }
        }
        if auth::server(stream.as_fd(), Framing::Stream, &self.authkey).is_err() {
            return;
        }
        let Ok(writer) = stream.try_clone() else {
            return;
        };
        let mut writer = writer;
        let mut reader = BufReader::new(stream);
        loop {
            let payload = match frame::read_frame_soon(&mut reader, MAX_FRAME) {
                Ok(payload) => payload,
                Err(FrameError::TooLarge { len, max }) => {
                    let error = WireError::new(
                        "FrameTooLarge",
                        format!("a frame of {len} bytes is over the limit of {max}"),
                    );
                    let _ = reply(&mut writer, 0, Err(error));
                    return;
                }
                Err(_) => return, // closed, bad magic, or a broken stream: drop the connection
            };
            let (id, result) = match wire::decode_request(&payload) {
                Ok(request) if request.op == "shutdown" => {
                    self.stopping.store(true, Ordering::SeqCst);
                    let _ = reply(&mut writer, request.id, Ok(Value::Nil));
                    return;
                }
                Ok(request) => (request.id, self.run(connection, request)),
                Err(error) => (0, Err(error)),
            };
            if reply(&mut writer, id, result).is_err() {
                return;
            }
        }
    }

    fn run(&self, connection: u64, request: Request) -> Result<Value, WireError> {
        let Request {
            op, object, args, ..
        } = request;
        let mut table = self.lock_table();
        match op.as_str() {
            "lock" => Ok(Value::from(
                table.insert(Object::Lock(LockState::default())),
            )),
            "queue" => {
                let max_items = args.first().and_then(Value::as_u64).unwrap_or(0) as usize;
                Ok(Value::from(table.insert(Object::Queue(QueueState {
                    items: std::collections::VecDeque::new(),
                    max_items,
                }))))
            }
            "queue.put" => {
                let item = arg(&args, 0)?.clone();
                let deadline = deadline_arg(&args, 1)?;
                self.wait_queue(table, object, deadline, |queue| {
                    (queue.max_items == 0 || queue.items.len() < queue.max_items).then(|| {
                        queue.items.push_back(item.clone());
                        Value::Nil
                    })
                })
            }
            "queue.get" => {
                let deadline = deadline_arg(&args, 0)?;
                self.wait_queue(table, object, deadline, |queue| {
                    queue.items.pop_front().map(|item| Value::Array(vec![item]))
                })
            }
            "queue.len" => Ok(Value::from(queue_of(&mut table, object)?.items.len())),
            "lock.acquire" => self.acquire(table, connection, object, &args),
            "lock.release" => {
                let lock = lock_of(&mut table, object)?;
                if lock.owner != Some(connection) {
                    return Err(WireError::new(
                        "NotOwner",
                        "the lock is not held by this connection",
                    ));
                }
                lock.owner = None;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            "ping" => Ok(Value::from("pong")),
            "dict" => Ok(Value::from(table.insert(Object::Dict(HashMap::new())))),
            "list" => {
                let items = match args.first() {
                    None | Some(Value::Nil) => Vec::new(),
                    Some(Value::Array(items)) => items.clone(),
                    Some(_) => return Err(WireError::new("BadArguments", "list takes [items]")),
                };
                Ok(Value::from(table.insert(Object::List(items))))
            }
            "array" => {
                let Some(Value::Array(items)) = args.first() else {
                    return Err(WireError::new("BadArguments", "array takes [items]"));
                };
                let items = items.clone();
                Ok(Value::from(table.insert(Object::Array(items))))
            }
            "object.new" => {
                let type_name = string_arg(&args, 0)?;
                if !self.types.contains_key(&type_name) {
                    return Err(WireError::new(
                        "NotExposed",
                        format!("no type {type_name} is registered with this manager"),
                    ));
                }
                let state = arg(&args, 1)?.clone();
                Ok(Value::from(table.insert(Object::User { type_name, state })))
            }
            "object.call" => {
                let method = string_arg(&args, 0)?;
                let call_args = arg(&args, 1)?.clone();
                let Some(Object::User { type_name, state }) = table.objects.get_mut(&object) else {
                    return Err(WireError::new(
                        "NotExposed",
                        format!("object {object} is not of a registered type"),
                    ));
                };
                let entry = *self
                    .types
                    .get(type_name.as_str())
                    .expect("checked at creation");
                let call = MethodCall {
                    state: state.clone(),
                    method,
                    args: call_args,
                };
                match run_method(entry, call) {
                    Ok((new_state, reply)) => {
                        *state = new_state;
                        Ok(reply)
                    }
                    Err((code, message)) => Err(WireError::new(&code, message)),
                }
            }
            "object.get" => match table.objects.get(&object) {
                Some(Object::User { state, .. }) => Ok(state.clone()),
                _ => Err(WireError::new(
                    "NotExposed",
                    format!("object {object} is not of a registered type"),
                )),
            },
            "value" => {
                let value = arg(&args, 0)?.clone();
                Ok(Value::from(table.insert(Object::Value(value))))
            }
            "dict_named" => {
                let name = string_arg(&args, 0)?;
                if let Some(&id) = table.names.get(&name) {
                    return Ok(Value::from(id));
                }
                let id = table.insert(Object::Dict(HashMap::new()));
                table.names.insert(name, id);
                Ok(Value::from(id))
            }
            "watch" => self.watch(table, object, &args),
            _ if changes(&op)
                && matches!(
                    table.objects.get(&object),
                    Some(Object::Dict(_) | Object::List(_))
                ) =>
            {
                let event = Value::Array(
                    std::iter::once(Value::from(op.as_str()))
                        .chain(args.iter().cloned())
                        .collect(),
                );
                let result = match table.objects.get_mut(&object) {
                    Some(Object::Dict(dict)) => dict_op(dict, &op, args),
                    Some(Object::List(list)) => list_op(list, &op, args),
                    _ => unreachable!("matched above"),
                };
                if result.is_ok() {
                    let log = table.logs.entry(object).or_default();
                    log.version += 1;
                    let version = log.version;
                    log.events.push_back((version, event));
                    if log.events.len() > LOG_LEN {
                        log.events.pop_front();
                    }
                    self.changed.notify_all();
                }
                result
            }
            _ => match table.objects.get_mut(&object) {
                Some(Object::Dict(dict)) => dict_op(dict, &op, args),
                Some(Object::List(list)) => list_op(list, &op, args),
                // An array answers the list operations that keep its length.
                Some(Object::Array(items)) => match op.as_str() {
                    "list.len" | "list.all" | "list.get" | "list.set" | "list.incr" => {
                        list_op(items, &op, args)
                    }
                    _ => Err(WireError::new(
                        "NotExposed",
                        format!("no operation {op} on an array (its length is fixed)"),
                    )),
                },
                Some(Object::Value(value)) => value_op(value, &op, args),
                Some(Object::Lock(_) | Object::Queue(_) | Object::User { .. }) => Err(
                    WireError::new("NotExposed", format!("no operation {op} on this object")),
                ),
                None => Err(unknown(object)),
            },
        }
    }
}

impl Server {
    /// `lock.acquire [timeout_ms or nil]`: waits (without the table) until the lock is free or
    /// the timeout passes. Gives `"acquired"`, `"owner_died"` (acquired from a holder whose
    /// connection ended) or `"timeout"`.
    fn acquire<'a>(
        &'a self,
        mut table: MutexGuard<'a, Table>,
        connection: u64,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let deadline = deadline_arg(args, 0)?;
        loop {
            let lock = lock_of(&mut table, object)?;
            if lock.owner == Some(connection) {
                return Err(WireError::new(
                    "WouldDeadlock",
                    "this connection already holds the lock",
                ));
            }
            if lock.owner.is_none() {
                lock.owner = Some(connection);
                let died = std::mem::take(&mut lock.owner_died);
                return Ok(Value::from(if died { "owner_died" } else { "acquired" }));
            }
            let Some(relocked) = self.wait_changed(table, deadline) else {
                return Ok(Value::from("timeout"));
            };
            table = relocked;
        }
    }
}

impl Server {
    /// Runs `step` on queue `object` until it gives a value (then wakes the others), or the
    /// deadline passes (`"timeout"`), waiting without the table in between.
    fn wait_queue<'a>(
        &'a self,
        mut table: MutexGuard<'a, Table>,
        object: u64,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut QueueState) -> Option<Value>,
    ) -> Result<Value, WireError> {
        loop {
            if let Some(value) = step(queue_of(&mut table, object)?) {
                self.changed.notify_all();
                return Ok(value);
            }
            let Some(relocked) = self.wait_changed(table, deadline) else {
                return Ok(Value::from("timeout"));
            };
            table = relocked;
        }
    }
}

/// Argument `index` as a deadline: milliseconds from now, or nil for none.
fn deadline_arg(args: &[Value], index: usize) -> Result<Option<Instant>, WireError> {
    match args.get(index) {
        None | Some(Value::Nil) => Ok(None),
        Some(ms) => Ok(Some(
            Instant::now()
                + Duration::from_millis(ms.as_u64().ok_or_else(|| {
                    WireError::new("BadArguments", "a timeout is in milliseconds")
                })?),
        )),
    }
}

fn queue_of(table: &mut Table, object: u64) -> Result<&mut QueueState, WireError> {
    match table.objects.get_mut(&object) {
        Some(Object::Queue(queue)) => Ok(queue),
        Some(_) => Err(WireError::new(
            "NotExposed",
            format!("object {object} is not a queue"),
        )),
        None => Err(unknown(object)),
    }
}

impl Server {
    /// `watch [since, timeout_ms or nil]`: waits until the dict or list has changes after
    /// version `since`, or the timeout. Gives `[version, [[op, args...], ...], missed]`, where
    /// `missed` says that changes older than the log were dropped.
    fn watch<'a>(
        &'a self,
        mut table: MutexGuard<'a, Table>,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        if !matches!(
            table.objects.get(&object),
            Some(Object::Dict(_) | Object::List(_))
        ) {
            return Err(WireError::new(
                "NotExposed",
                format!("object {object} is not a dict or a list"),
            ));
        }
        let since = arg(args, 0)?
            .as_u64()
            .ok_or_else(|| WireError::new("BadArguments", "since is a version number"))?;
        let deadline = deadline_arg(args, 1)?;
        loop {
            let log = table.logs.entry(object).or_default();
            if log.version > since {
                let missed = log.events.front().is_some_and(|(v, _)| *v > since + 1);
                let events = log
                    .events
                    .iter()
                    .filter(|(v, _)| *v > since)
                    .map(|(_, e)| e.clone())
                    .collect();
                return Ok(Value::Array(vec![
                    Value::from(log.version),
                    Value::Array(events),
                    Value::from(missed),
                ]));
            }
            let Some(relocked) = self.wait_changed(table, deadline) else {
                let version = self.lock_table().logs.get(&object).map_or(0, |l| l.version);
                return Ok(Value::Array(vec![
                    Value::from(version),
                    Value::Array(Vec::new()),
                    Value::from(false),
                ]));
            };
            table = relocked;
        }
    }
}

/// The trust boundary of the server: runs a registered type's dispatch.
#[allow(unsafe_code)]
fn run_method(entry: TypeEntry, call: MethodCall) -> Result<(Value, Value), (String, String)> {
    // SAFETY: the entry was registered in this process (`serve`) or reached it as an argument of
    // this server process, over the private bootstrap socket, from its parent, which runs this
    // same executable (we are its exec of `/proc/self/exe` or its fork) and made the entry with
    // `EntryPoint::new`. Nothing from a client's connection becomes an entry: clients only name
    // registered types. `invoke` checks the image probe as well.
    match unsafe { entry.invoke(call) } {
        Ok(outcome) => outcome,
        Err(_) => Err((
            "NotExposed".into(),
            "the type's code is not in this server's executable".into(),
        )),
    }
}

fn unknown(object: u64) -> WireError {
    WireError::new("UnknownObject", format!("no object {object}"))
}

fn lock_of(table: &mut Table, object: u64) -> Result<&mut LockState, WireError> {
    match table.objects.get_mut(&object) {
        Some(Object::Lock(lock)) => Ok(lock),
        Some(_) => Err(WireError::new(
            "NotExposed",
            format!("object {object} is not a lock"),
        )),
        None => Err(unknown(object)),
    }
}

impl Table {
    fn insert(&mut self, object: Object) -> u64 {
        let id = self.next;
        self.next += 1;
        self.objects.insert(id, object);
        id
    }
}

fn reply(out: &mut impl Write, id: u64, result: Result<Value, WireError>) -> std::io::Result<()> {
    frame::write_frame(out, &wire::encode(&Response { id, result }))
}

fn arg(args: &[Value], index: usize) -> Result<&Value, WireError> {
    args.get(index)
        .ok_or_else(|| WireError::new("BadArguments", format!("argument {index} missing")))
}

fn string_arg(args: &[Value], index: usize) -> Result<String, WireError> {
    arg(args, index)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| WireError::new("BadArguments", format!("argument {index} is not a string")))
}

fn key_of(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value).expect("writing to a Vec does not fail");
    bytes
}

fn dict_op(
    dict: &mut HashMap<Vec<u8>, (Value, Value)>,
    op: &str,
    args: Vec<Value>,
) -> Result<Value, WireError> {
    let missing = |key: &Value| WireError::new("KeyMissing", format!("no key {key}"));
    match op {
        "dict.len" => Ok(Value::from(dict.len())),
        "dict.get" => {
            let key = arg(&args, 0)?;
            Ok(dict
                .get(&key_of(key))
                .map_or(Value::Nil, |(_, v)| Value::Array(vec![v.clone()])))
        }
        "dict.set" => {
            let key = arg(&args, 0)?.clone();
            let value = arg(&args, 1)?.clone();
            dict.insert(key_of(&key), (key, value));
            Ok(Value::Nil)
        }
        "dict.contains" => Ok(Value::from(dict.contains_key(&key_of(arg(&args, 0)?)))),
        "dict.pop" => {
            let key = arg(&args, 0)?;
            Ok(dict
                .remove(&key_of(key))
                .map_or(Value::Nil, |(_, v)| Value::Array(vec![v])))
        }
        "dict.del" => {
            let key = arg(&args, 0)?;
            dict.remove(&key_of(key))
                .map(|_| Value::Nil)
                .ok_or_else(|| missing(key))
        }
        "dict.keys" => Ok(Value::Array(
            dict.values().map(|(k, _)| k.clone()).collect(),
        )),
        "dict.items" => Ok(Value::Array(
            dict.values()
                .map(|(k, v)| Value::Array(vec![k.clone(), v.clone()]))
                .collect(),
        )),
        "dict.setdefault" => {
            let key = arg(&args, 0)?.clone();
            let default = arg(&args, 1)?.clone();
            let entry = dict.entry(key_of(&key)).or_insert((key, default));
            Ok(entry.1.clone())
        }
        "dict.incr" => {
            let key = arg(&args, 0)?.clone();
            let delta = arg(&args, 1)?;
            let entry = dict
                .entry(key_of(&key))
                .or_insert_with(|| (key, Value::from(0)));
            let sum = add(&entry.1, delta)?;
            entry.1 = sum.clone();
            Ok(sum)
        }
        "dict.compare_and_swap" => {
            let key = arg(&args, 0)?.clone();
            let expected = arg(&args, 1)?;
            let new = arg(&args, 2)?.clone();
            let current = dict.get(&key_of(&key)).map(|(_, v)| v);
            let matches = match (current, expected) {
                (None, Value::Nil) => true,
                (Some(current), expected) => current == expected,
                (None, _) => false,
            };
            if matches {
                dict.insert(key_of(&key), (key, new));
            }
            Ok(Value::from(matches))
        }
        "dict.update" => {
            let Value::Array(pairs) = arg(&args, 0)? else {
                return Err(WireError::new(
                    "BadArguments",
                    "update takes [[key, value], ...]",
                ));
            };
            for pair in pairs {
                let Value::Array(kv) = pair else {
                    return Err(WireError::new("BadArguments", "a pair is [key, value]"));
                };
                let [key, value] = kv.as_slice() else {
                    return Err(WireError::new("BadArguments", "a pair is [key, value]"));
                };
                dict.insert(key_of(key), (key.clone(), value.clone()));
            }
            Ok(Value::Nil)
        }
        "dict.get_many" => {
            let Value::Array(keys) = arg(&args, 0)? else {
                return Err(WireError::new("BadArguments", "get_many takes [key, ...]"));
            };
            Ok(Value::Array(
                keys.iter()
                    .map(|key| {
                        dict.get(&key_of(key))
                            .map_or(Value::Nil, |(_, v)| Value::Array(vec![v.clone()]))
                    })
                    .collect(),
            ))
        }
        _ => Err(WireError::new(
            "NotExposed",
            format!("no operation {op} on a dict"),
        )),
    }
}

fn index_arg(args: &[Value], index: usize, len: usize) -> Result<usize, WireError> {
    let i = arg(args, index)?
        .as_u64()
        .ok_or_else(|| WireError::new("BadArguments", "an index is an unsigned integer"))?;
    usize::try_from(i).ok().filter(|&i| i < len).ok_or_else(|| {
        WireError::new(
            "IndexOutOfRange",
            format!("index {i} out of range for length {len}"),
        )
    })
}

fn list_op(list: &mut Vec<Value>, op: &str, args: Vec<Value>) -> Result<Value, WireError> {
    match op {
        "list.len" => Ok(Value::from(list.len())),
        "list.all" => Ok(Value::Array(list.clone())),
        "list.get" => Ok(list[index_arg(&args, 0, list.len())?].clone()),
        "list.set" => {
            let i = index_arg(&args, 0, list.len())?;
            list[i] = arg(&args, 1)?.clone();
            Ok(Value::Nil)
        }
        "list.append" => {
            list.push(arg(&args, 0)?.clone());
            Ok(Value::Nil)
        }
        "list.extend" => {
            let Value::Array(items) = arg(&args, 0)? else {
                return Err(WireError::new("BadArguments", "extend takes [items]"));
            };
            list.extend(items.iter().cloned());
            Ok(Value::Nil)
        }
        "list.insert" => {
            let i = arg(&args, 0)?
                .as_u64()
                .map(|i| (i as usize).min(list.len()))
                .ok_or_else(|| WireError::new("BadArguments", "an index is an unsigned integer"))?;
            list.insert(i, arg(&args, 1)?.clone());
            Ok(Value::Nil)
        }
        "list.pop" => Ok(list
            .pop()
            .map_or(Value::Nil, |item| Value::Array(vec![item]))),
        "list.remove" => {
            let i = index_arg(&args, 0, list.len())?;
            Ok(list.remove(i))
        }
        "list.incr" => {
            let i = index_arg(&args, 0, list.len())?;
            let sum = add(&list[i], arg(&args, 1)?)?;
            list[i] = sum.clone();
            Ok(sum)
        }
        _ => Err(WireError::new(
            "NotExposed",
            format!("no operation {op} on a list"),
        )),
    }
}

fn value_op(value: &mut Value, op: &str, args: Vec<Value>) -> Result<Value, WireError> {
    match op {
        "value.get" => Ok(value.clone()),
        "value.set" => {
            *value = arg(&args, 0)?.clone();
            Ok(Value::Nil)
        }
        "value.incr" => {
            *value = add(value, arg(&args, 0)?)?;
            Ok(value.clone())
        }
        "value.compare_and_swap" => {
            let swap = value == arg(&args, 0)?;
            if swap {
                *value = arg(&args, 1)?.clone();
            }
            Ok(Value::from(swap))
        }
        _ => Err(WireError::new(
            "NotExposed",
            format!("no operation {op} on a value"),
        )),
    }
}

/// `a + b` for integers (checked) and floats.
fn add(a: &Value, b: &Value) -> Result<Value, WireError> {
    let not_numbers = || WireError::new("TypeError", format!("cannot add {b} to {a}"));
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x
            .checked_add(y)
            .map(Value::from)
            .ok_or_else(|| WireError::new("Overflow", format!("{x} + {y} overflows")));
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_f64() || b.is_f64() || a.is_f32() || b.is_f32() => {
            Ok(Value::from(x + y))
        }
        _ => Err(not_numbers()),
    }
}
