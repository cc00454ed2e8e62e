//! Semaphores, events and barriers on Redis: one script per look, and between looks a wait on the
//! object's wake list (`BLPOP`), at most a quarter of a lease at a time. A release pushes a wake,
//! a set pushes one for every waiter counted, a barrier's last arrival one for every party. A
//! barrier's waiter renews its own lease at every look: one that dies or stops lets it lapse, and
//! the next look of another breaks the barrier.

use rmpv::Value;

use super::super::ManagerError;
use super::super::protocol::Op;
use super::queue::{block, deadline, left};
use super::{Store, ops};

/// Runs a semaphore's, an event's or a barrier's operation, for `owner`.
pub(super) fn run(
    store: &Store,
    connection: &mut super::Conn,
    op: Op,
    object: u64,
    owner: u64,
    args: &[Value],
) -> Result<Value, ManagerError> {
    let prefix = store.target.prefix(object);
    let lease = store.target.lease().as_millis().to_string().into_bytes();
    let call = |connection: &mut super::Conn, name: &str, rest: Vec<Vec<u8>>| {
        let mut argv = vec![name.as_bytes().to_vec(), ops::kinds(op)];
        argv.extend(rest);
        ops::script(connection, &prefix, argv)
    };
    let slice = store.target.wait_slice();
    let is = |answer: &redis::Value, text: &[u8]| matches!(answer, redis::Value::BulkString(s) if s == text);
    match op {
        Op::SemaphoreAcquire => {
            let deadline = deadline(args.first())?;
            loop {
                let answer = call(connection, "semaphore.acquire", Vec::new())?;
                if is(&answer, b"acquired") {
                    return Ok(Value::from("acquired"));
                }
                let Some(wait) = left(deadline, slice) else {
                    return Ok(Value::from("timeout"));
                };
                block(connection, "BLPOP", &[format!("{prefix}wsem")], wait)?;
            }
        }
        Op::SemaphoreRelease => {
            call(connection, "semaphore.release", vec![lease]).map(|_| Value::Nil)
        }
        Op::SemaphoreValue => match call(connection, "semaphore.value", Vec::new())? {
            redis::Value::Int(n) => Ok(Value::from(n)),
            other => Err(ops::unexpected(&other)),
        },
        Op::EventSet => call(connection, "event.set", vec![lease]).map(|_| Value::Nil),
        Op::EventClear => call(connection, "event.clear", Vec::new()).map(|_| Value::Nil),
        Op::EventIsSet => match call(connection, "event.is_set", Vec::new())? {
            redis::Value::Int(n) => Ok(Value::from(n != 0)),
            other => Err(ops::unexpected(&other)),
        },
        Op::EventWait => {
            let deadline = deadline(args.first())?;
            let mut step = "enter";
            loop {
                let answer = call(connection, "event.wait", vec![step.into()])?;
                if answer == redis::Value::Int(1) {
                    return Ok(Value::Nil);
                }
                let Some(wait) = left(deadline, slice) else {
                    call(connection, "event.wait", vec![b"leave".to_vec()])?;
                    return Ok(Value::from("timeout"));
                };
                block(connection, "BLPOP", &[format!("{prefix}wev")], wait)?;
                step = "again";
            }
        }
        Op::BarrierWait => {
            let deadline = deadline(args.first())?;
            let token = store.token(owner).into_bytes();
            let arrived = call(
                connection,
                "barrier.arrive",
                vec![token.clone(), lease.clone()],
            )?;
            let (index, round, released) = match &arrived {
                redis::Value::Array(parts) => match parts.as_slice() {
                    [
                        redis::Value::Int(i),
                        redis::Value::Int(r),
                        redis::Value::Int(d),
                    ] => (*i, *r, *d != 0),
                    _ => return Err(ops::unexpected(&arrived)),
                },
                _ => return Err(ops::unexpected(&arrived)),
            };
            if released {
                return Ok(Value::from(index));
            }
            let round = round.to_string().into_bytes();
            let rest = || vec![token.clone(), lease.clone(), round.clone()];
            loop {
                if call(connection, "barrier.look", rest())? == redis::Value::Int(1) {
                    return Ok(Value::from(index));
                }
                let Some(wait) = left(deadline, slice) else {
                    return match call(connection, "barrier.leave", rest())? {
                        redis::Value::Int(1) => Ok(Value::from(index)),
                        _ => Ok(Value::from("timeout")),
                    };
                };
                block(connection, "BLPOP", &[format!("{prefix}wb")], wait)?;
            }
        }
        Op::BarrierAbort | Op::BarrierReset => {
            let name = match op {
                Op::BarrierAbort => "barrier.abort",
                _ => "barrier.reset",
            };
            call(connection, name, vec![Vec::new(), lease]).map(|_| Value::Nil)
        }
        Op::BarrierState => match call(connection, "barrier.state", Vec::new())? {
            redis::Value::Array(parts) => match parts.as_slice() {
                [
                    redis::Value::Int(parties),
                    redis::Value::Int(count),
                    redis::Value::Int(b),
                ] => Ok(Value::Array(vec![
                    Value::from(*parties),
                    Value::from(*count),
                    Value::from(*b != 0),
                ])),
                _ => Err(ops::unexpected(&redis::Value::Array(parts))),
            },
            other => Err(ops::unexpected(&other)),
        },
        other => Err(ops::not_on_redis(other.name())),
    }
}
