//! Locks on Redis, as leases: Redis cannot know that a holder's process died, so a taken lock is
//! a key that expires unless its holder's process renews it. A thread of the process renews every
//! lease it holds (a third of the lease at a time); a holder that dies, or stops (SIGSTOP, a
//! pause), renews nothing, its lease lapses, and the next taker is told that the owner died. A
//! waiter blocks on the lock's wake list between its attempts, at most a quarter of a lease at a
//! time, so that a lapsed lease is seen without a release to wake anyone.
//!
//! An owner is a handle (as on the manager): its token is the store's random id and the handle's
//! owner number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use rmpv::Value;

use super::super::protocol::Op;
use super::super::{ErrorCode, ManagerError};
use super::{Store, lock, ops};

/// What a process holds: each lock (object) and owner, with its depth; and each queue (object)
/// and its consumer (owner), whose pending items are its own while its lease lasts.
#[derive(Default)]
pub(super) struct Leases {
    held: Mutex<HashMap<(u64, u64), u32>>,
    consumers: Mutex<std::collections::HashSet<(u64, u64)>>,
    /// Whether the thread that renews them runs.
    renewing: Mutex<bool>,
}

/// Runs a lock operation (`lock.acquire`, `lock.release`, `lock.state`) for `owner`.
pub(super) fn run(
    store: &Store,
    connection: &mut super::Conn,
    op: Op,
    object: u64,
    owner: u64,
    args: &[Value],
) -> Result<Value, ManagerError> {
    let prefix = store.target.prefix(object);
    let token = store.token(owner);
    let lease = store.target.lease().as_millis().to_string().into_bytes();
    let call = |connection: &mut super::Conn, name: &str| {
        let argv = vec![
            name.as_bytes().to_vec(),
            ops::kinds(op),
            token.clone().into_bytes(),
            lease.clone(),
        ];
        ops::script(connection, &prefix, argv)
    };
    match op {
        Op::LockAcquire => {
            let deadline = super::queue::deadline(args.first())?;
            let with_fence = args.get(1).and_then(Value::as_bool) == Some(true);
            loop {
                let answer = call(connection, "lock.acquire")?;
                let (status, fence) = match &answer {
                    redis::Value::Array(parts) => match parts.as_slice() {
                        [redis::Value::BulkString(status), redis::Value::Int(fence)] => {
                            (status.clone(), *fence)
                        }
                        _ => return Err(ops::unexpected(&answer)),
                    },
                    _ => return Err(ops::unexpected(&answer)),
                };
                if status != b"busy" {
                    store.leases_taken(object, owner);
                    let status = Value::from(String::from_utf8_lossy(&status).into_owned());
                    return Ok(match with_fence {
                        true => Value::Array(vec![status, Value::from(fence)]),
                        false => status,
                    });
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| d <= now) {
                    return Ok(Value::from("timeout"));
                }
                let slice = deadline.map_or(store.target.wait_slice(), |d| {
                    store.target.wait_slice().min(d - now)
                });
                super::queue::block(connection, "BLPOP", &[format!("{prefix}w")], slice)?;
            }
        }
        Op::LockRelease => {
            let held = store.leases_released(object, owner);
            match call(connection, "lock.release") {
                Err(ManagerError::Remote { code, .. }) if code == ErrorCode::NotOwner && held => {
                    Err(ManagerError::Remote {
                        code: ErrorCode::LeaseExpired,
                        message: "this handle's lease on the lock lapsed before its release \
                                  (its process did not renew it in time): another may hold it"
                            .to_owned(),
                    })
                }
                other => other.map(|_| Value::Nil),
            }
        }
        Op::LockState => {
            let answer = call(connection, "lock.state")?;
            match answer {
                redis::Value::Array(parts) => match parts.as_slice() {
                    [redis::Value::Int(held), redis::Value::Int(depth)] => Ok(Value::Array(vec![
                        Value::from(*held != 0),
                        Value::from(*depth),
                    ])),
                    _ => Err(ops::unexpected(&redis::Value::Array(parts))),
                },
                other => Err(ops::unexpected(&other)),
            }
        }
        Op::ConditionWait => condition_wait(store, connection, &prefix, op, &token, &lease, args),
        Op::ConditionNotify => {
            let count = match args.first() {
                None | Some(Value::Nil) => Vec::new(),
                Some(n) => n
                    .as_u64()
                    .ok_or_else(|| ops::bad("notify takes a count or nil"))?
                    .to_string()
                    .into_bytes(),
            };
            let argv = vec![
                b"condition.notify".to_vec(),
                ops::kinds(op),
                count,
                lease.clone(),
            ];
            match ops::script(connection, &prefix, argv)? {
                redis::Value::Int(n) => Ok(Value::from(n)),
                other => Err(ops::unexpected(&other)),
            }
        }
        other => Err(ops::not_on_redis(other.name())),
    }
}

/// `condition.wait [timeout_ms or nil]`: releases the lock (every acquisition of this owner),
/// waits to be notified or for the deadline, renewing its ticket's lease at every look, then takes
/// the lock back at its depth, waiting as long as it takes: `[notified, owner_died]`.
fn condition_wait(
    store: &Store,
    connection: &mut super::Conn,
    prefix: &str,
    op: Op,
    token: &str,
    lease: &[u8],
    args: &[Value],
) -> Result<Value, ManagerError> {
    let deadline = super::queue::deadline(args.first())?;
    let call = |connection: &mut super::Conn, name: &str, rest: Vec<Vec<u8>>| {
        let mut argv = vec![name.as_bytes().to_vec(), ops::kinds(op)];
        argv.extend(rest);
        ops::script(connection, prefix, argv)
    };
    let queued = call(
        connection,
        "condition.wait",
        vec![token.as_bytes().to_vec(), lease.to_vec()],
    )?;
    let (ticket, depth) = match &queued {
        redis::Value::Array(parts) => match parts.as_slice() {
            [redis::Value::Int(ticket), redis::Value::Int(depth)] => (*ticket, *depth),
            _ => return Err(ops::unexpected(&queued)),
        },
        _ => return Err(ops::unexpected(&queued)),
    };
    let ticket = ticket.to_string().into_bytes();
    let look = |connection: &mut super::Conn, leaving: &[u8]| {
        call(
            connection,
            "condition.look",
            vec![ticket.clone(), lease.to_vec(), leaving.to_vec()],
        )
        .map(|answer| answer == redis::Value::Int(1))
    };
    let slice = store.target.wait_slice();
    let wake = format!("{prefix}cw:{}", String::from_utf8_lossy(&ticket));
    let notified = loop {
        if look(connection, b"0")? {
            break true;
        }
        let Some(wait) = super::queue::left(deadline, slice) else {
            break look(connection, b"1")?;
        };
        super::queue::block(connection, "BLPOP", std::slice::from_ref(&wake), wait)?;
    };
    let depth = depth.to_string().into_bytes();
    loop {
        let answer = call(
            connection,
            "condition.retake",
            vec![token.as_bytes().to_vec(), lease.to_vec(), depth.clone()],
        )?;
        let status = match &answer {
            redis::Value::Array(parts) => match parts.first() {
                Some(redis::Value::BulkString(status)) => status.clone(),
                _ => return Err(ops::unexpected(&answer)),
            },
            _ => return Err(ops::unexpected(&answer)),
        };
        if status != b"busy" {
            return Ok(Value::Array(vec![
                Value::from(notified),
                Value::from(status == b"owner_died"),
            ]));
        }
        super::queue::block(connection, "BLPOP", &[format!("{prefix}w")], slice)?;
    }
}

/// Releases every lock `owner` still holds (its handle was dropped with a guard forgotten).
pub(super) fn owner_end(store: &Store, connection: &mut super::Conn, owner: u64) {
    let objects: Vec<(u64, u32)> = lock(&store.leases.held)
        .iter()
        .filter(|((_, o), _)| *o == owner)
        .map(|((object, _), depth)| (*object, *depth))
        .collect();
    for (object, depth) in objects {
        for _ in 0..depth {
            let _ = run(store, connection, Op::LockRelease, object, owner, &[]);
        }
    }
}

impl Store {
    pub(super) fn token(&self, owner: u64) -> String {
        format!("{:016x}:{owner}", self.id)
    }

    /// Counts an acquisition, and makes sure its lease is renewed.
    fn leases_taken(&self, object: u64, owner: u64) {
        *lock(&self.leases.held).entry((object, owner)).or_insert(0) += 1;
        self.renewing();
    }

    /// Makes `owner` a consumer of queue `object` whose lease is renewed from now on.
    pub(super) fn consumer_lease(&self, object: u64, owner: u64) {
        if lock(&self.leases.consumers).insert((object, owner)) {
            self.renewing();
        }
    }

    /// This process let go of queue `object` (its last proxy was dropped): what its consumers
    /// have pending was delivered, and they are consumers no more.
    /// (Without a connection, their leases are no longer renewed: they lapse.)
    pub(super) fn let_go(&self, connection: Option<&mut super::Conn>, object: u64) {
        let owners: Vec<u64> = {
            let mut consumers = lock(&self.leases.consumers);
            let owners = consumers
                .iter()
                .filter(|(o, _)| *o == object)
                .map(|(_, owner)| *owner)
                .collect();
            consumers.retain(|(o, _)| *o != object);
            owners
        };
        let Some(connection) = connection else {
            return;
        };
        for owner in owners {
            let argv = vec![
                b"queue.ack".to_vec(),
                Vec::new(),
                self.token(owner).into_bytes(),
            ];
            let _ = ops::script(connection, &self.target.prefix(object), argv);
        }
    }

    /// Whether this process has consumers of queue `object`.
    pub(crate) fn consumes(&self, object: u64) -> bool {
        lock(&self.leases.consumers)
            .iter()
            .any(|(o, _)| *o == object)
    }

    /// Starts the renewing thread, if it does not run.
    fn renewing(&self) {
        let mut renewing = lock(&self.leases.renewing);
        if !*renewing {
            *renewing = true;
            let leases = Arc::downgrade(&self.leases);
            let (target, client, id) = (self.target.clone(), self.client.clone(), self.id);
            let spawned = std::thread::Builder::new()
                .name("multiproc-redis-lease".into())
                .spawn(move || renew(leases, target, client, id));
            *renewing = spawned.is_ok();
        }
    }

    /// Counts a release; whether this owner held the lock.
    fn leases_released(&self, object: u64, owner: u64) -> bool {
        let mut held = lock(&self.leases.held);
        match held.get_mut(&(object, owner)) {
            Some(depth) => {
                *depth -= 1;
                if *depth == 0 {
                    held.remove(&(object, owner));
                }
                true
            }
            None => false,
        }
    }
}

/// The renewing thread: every third of a lease, renews each lease the process holds, until the
/// store is gone.
fn renew(leases: Weak<Leases>, target: super::Target, client: super::Connector, id: u64) {
    let mut connection: Option<super::Conn> = None;
    let lease = target.lease();
    let millis = lease.as_millis().to_string().into_bytes();
    loop {
        std::thread::sleep(lease / 3);
        let Some(leases) = leases.upgrade() else {
            return;
        };
        let held: Vec<(u64, u64, &str)> = lock(&leases.held)
            .keys()
            .map(|&(object, owner)| (object, owner, "lock.renew"))
            .chain(
                lock(&leases.consumers)
                    .iter()
                    .map(|&(object, owner)| (object, owner, "queue.renew")),
            )
            .collect();
        if held.is_empty() {
            continue;
        }
        if connection.is_none() {
            // A renewal later than a lease is of no use: the connection is given up then.
            connection = client
                .connect(target.connect_timeout())
                .ok()
                .filter(|c| c.set_read_timeout(Some(lease)).is_ok());
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        for (object, owner, renewal) in held {
            let argv = vec![
                renewal.as_bytes().to_vec(),
                Vec::new(),
                format!("{id:016x}:{owner}").into_bytes(),
                millis.clone(),
            ];
            // A lease found taken by another (it lapsed) stays counted: its release then says
            // `LeaseExpired`.
            match ops::script(conn, &target.prefix(object), argv) {
                Ok(_) => {}
                Err(_) => {
                    connection = None;
                    break;
                }
            }
        }
    }
}
