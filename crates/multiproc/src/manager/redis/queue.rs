//! Queues on Redis, at least once: a get moves its item into its consumer's pending list, where
//! it stays until that consumer's next get or `task_done`; a consumer (a handle) has a lease its
//! process renews, and the next get (or `join`) of any consumer gives back to the head of the
//! queue what consumers whose lease lapsed had pending. So an item still pending when its
//! consumer died comes again (a duplicate if it had been processed); one a later get acknowledged
//! but nobody declared done is lost with its dead consumer, and `join` reports it (as the
//! in-memory manager does). A get that finds the queue empty blocks in `BLMOVE` into its pending
//! list, a quarter of a lease at a time (to see a close), its lease taken first.

use std::time::{Duration, Instant};

use rmpv::Value;

use super::super::ManagerError;
use super::super::protocol::Op;
use super::{ANSWER_TIMEOUT, Store, error, ops};

/// Runs a queue operation for `owner` (the consumer, for a get and a `task_done`).
pub(super) fn run(
    store: &Store,
    connection: &mut super::Conn,
    op: Op,
    object: u64,
    owner: u64,
    args: &[Value],
) -> Result<Value, ManagerError> {
    let prefix = store.target.prefix(object);
    let consumer = store.token(owner);
    let lease = store.target.lease().as_millis().to_string().into_bytes();
    let call = |connection: &mut super::Conn, name: &str, first: Vec<u8>| {
        let argv = vec![
            name.as_bytes().to_vec(),
            ops::kinds(op),
            first,
            lease.clone(),
        ];
        ops::script(connection, &prefix, argv)
    };
    let slice = || store.target.wait_slice();
    match op {
        Op::QueuePut => {
            let item = args.first().ok_or_else(|| ops::bad("put takes an item"))?;
            let deadline = deadline(args.get(1))?;
            let encoded = super::super::server::data::key_of(item);
            loop {
                let answer = call(connection, "queue.put", encoded.clone())?;
                if answer != redis::Value::BulkString(b"full".to_vec()) {
                    return Ok(Value::Nil);
                }
                let Some(wait) = left(deadline, slice()) else {
                    return Ok(Value::from("timeout"));
                };
                block(connection, "BLPOP", &[format!("{prefix}wput")], wait)?;
            }
        }
        Op::QueueGet => {
            let deadline = deadline(args.first())?;
            store.consumer_lease(object, owner);
            loop {
                let answer = call(connection, "queue.get", consumer.clone().into_bytes())?;
                match answer {
                    redis::Value::Array(mut item) if item.len() == 1 => {
                        return Ok(Value::Array(vec![ops::decode(item.remove(0))?]));
                    }
                    redis::Value::BulkString(empty) if empty == b"empty" => {}
                    other => return Err(ops::unexpected(&other)),
                }
                let Some(wait) = left(deadline, slice()) else {
                    return Ok(Value::from("timeout"));
                };
                let keys = [
                    format!("{prefix}q"),
                    format!("{prefix}pend:{consumer}"),
                    "LEFT".to_owned(),
                    "RIGHT".to_owned(),
                ];
                match block(connection, "BLMOVE", &keys, wait)? {
                    redis::Value::Nil => {}
                    item => return Ok(Value::Array(vec![ops::decode(item)?])),
                }
            }
        }
        Op::QueueTaskDone => {
            call(connection, "queue.task_done", consumer.into_bytes()).map(|_| Value::Nil)
        }
        Op::QueueClose => call(connection, "queue.close", Vec::new()).map(|_| Value::Nil),
        Op::QueueState => match call(connection, "queue.state", Vec::new())? {
            redis::Value::Array(parts) => match parts.as_slice() {
                [
                    redis::Value::Int(len),
                    redis::Value::Int(max),
                    redis::Value::Int(closed),
                    redis::Value::Int(unfinished),
                ] => Ok(Value::Array(vec![
                    Value::from(*len),
                    if *max < 0 {
                        Value::Nil
                    } else {
                        Value::from(*max)
                    },
                    Value::from(*closed != 0),
                    Value::from(*unfinished),
                ])),
                _ => Err(ops::unexpected(&redis::Value::Array(parts))),
            },
            other => Err(ops::unexpected(&other)),
        },
        Op::QueueJoin => {
            let deadline = deadline(args.first())?;
            loop {
                match call(connection, "queue.joined", Vec::new())? {
                    redis::Value::Int(0) => return Ok(Value::Nil),
                    redis::Value::Int(lost) if lost > 0 => return Ok(Value::from(lost)),
                    redis::Value::Int(_) => {}
                    other => return Err(ops::unexpected(&other)),
                }
                let Some(wait) = left(deadline, slice()) else {
                    return Ok(Value::from("timeout"));
                };
                block(connection, "BLPOP", &[format!("{prefix}wjoin")], wait)?;
            }
        }
        other => Err(ops::not_on_redis(other.name())),
    }
}

/// A wait's deadline from its argument (milliseconds, or nil: none).
pub(super) fn deadline(arg: Option<&Value>) -> Result<Option<Instant>, ManagerError> {
    match arg {
        None | Some(Value::Nil) => Ok(None),
        Some(ms) => {
            let ms = ms
                .as_u64()
                .ok_or_else(|| ops::bad("a timeout is in milliseconds"))?;
            Ok(Instant::now().checked_add(Duration::from_millis(ms)))
        }
    }
}

/// How long to block before looking again: `slice`, or less if the deadline is nearer; `None`
/// once it passed.
pub(super) fn left(deadline: Option<Instant>, slice: Duration) -> Option<Duration> {
    let now = Instant::now();
    match deadline {
        None => Some(slice),
        Some(d) if d <= now => None,
        Some(d) => Some(slice.min(d - now)),
    }
}

/// Runs a blocking command (`BLPOP`, `BLMOVE`) with `args` for at most `wait`; its answer (nil:
/// nothing came).
pub(super) fn block(
    connection: &mut super::Conn,
    command: &str,
    args: &[String],
    wait: Duration,
) -> Result<redis::Value, ManagerError> {
    let seconds = wait.as_secs_f64().max(0.01);
    connection
        .set_read_timeout(Some(wait + ANSWER_TIMEOUT))
        .map_err(|e| error(&e))?;
    let answer = redis::cmd(command)
        .arg(args)
        .arg(format!("{seconds:.3}"))
        .query::<redis::Value>(connection);
    connection
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| error(&e))?;
    answer.map_err(|e| error(&e))
}
