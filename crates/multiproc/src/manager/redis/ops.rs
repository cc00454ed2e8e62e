//! The protocol's operations as calls of `ops.lua`, and their answers as the in-memory manager
//! gives them: each operation is one call of its function, one round trip. The list operations
//! that rearrange the whole list (slices, sort, reverse, repeat) read the list, run the in-memory
//! manager's own code on it here, and write it back only if nobody changed it meanwhile (else they
//! run again).

use std::sync::LazyLock;

use rmpv::Value;

use super::super::protocol::{Kind, Op, frame};
use super::super::server::data;
use super::super::{ErrorCode, ManagerError};
use super::{Store, error};

/// The function library (`ops.lua`, named and registered), and its function's name: both carry
/// the library's hash, so that clients of two versions of multiproc on one server each call their
/// own.
static LIBRARY: LazyLock<(String, String)> = LazyLock::new(|| {
    // The operations that only read are a function of their own, flagged `no-writes`: Redis
    // runs them on a server at its `maxmemory` too (and on replicas).
    let body = |name: &str| {
        format!(
            "{}\nredis.register_function('{name}', main)\nredis.register_function{{\
             function_name='{name}_ro', callback=main, flags={{'no-writes'}}}}\n",
            include_str!("ops.lua")
        )
    };
    let hash = redis::Script::new(&body("NAME")).get_hash().to_owned();
    let name = format!("multiproc_{}", &hash[..16]);
    (format!("#!lua name={name}\n{}", body(&name)), name)
});

/// The operations of `ops.lua` that only read (called through the `no-writes` function).
const READ_ONLY: &[&str] = &[
    "kind",
    "dict.len",
    "dict.version",
    "dict.get",
    "dict.getitem",
    "dict.contains",
    "dict.keys",
    "dict.values",
    "dict.items",
    "dict.get_many",
    "value.get",
    "list.len",
    "list.all",
    "list.range",
    "list.get",
    "list.contains",
    "list.count",
    "list.index",
    "list.snapshot",
    "object.snapshot",
    "lock.state",
    "queue.state",
    "semaphore.value",
    "event.is_set",
    "barrier.state",
];

/// How an answer of the script becomes the protocol's.
#[derive(Clone, Copy)]
enum Answer {
    /// An encoded value.
    Encoded,
    /// An encoded value or nil: `[value]` or nil.
    Optional,
    /// An integer.
    Integer,
    /// An integer or nil: `[integer]` or nil.
    OptionalInteger,
    /// 0 or 1.
    Bool,
    /// Nothing (the script says nil).
    Nil,
    /// Encoded values.
    Values,
    /// Encoded values or nils, each `[value]` or nil.
    Optionals,
    /// key, value, key, value, ...: `[[key, value], ...]`.
    Pairs,
    /// `[key, value]`, encoded.
    Pair,
    /// `[0 or 1, value]`.
    Exchange,
    /// A kind's name.
    Text,
}

/// Runs `op` on `object` on `connection`.
pub(super) fn run(
    store: &Store,
    connection: &mut super::Conn,
    op: Op,
    object: u64,
    args: &[Value],
    fence: Option<u64>,
) -> Result<Value, ManagerError> {
    let target = &store.target;
    if args.iter().any(holds_nested_slot) {
        return Err(ManagerError::Value(
            "a value holds MessagePack extension 1, the manager's own mark of a nested container: \
             values may not"
                .to_owned(),
        ));
    }
    match op {
        Op::Create(kind) => {
            let (kind, rest) = creation(kind, args.to_vec())?;
            loop {
                let id = random_id()?;
                let mut argv = vec![b"create".to_vec(), Vec::new(), kind.name().into()];
                argv.extend(rest.iter().cloned());
                if script(connection, &target.prefix(id), argv)? == redis::Value::Int(1) {
                    return Ok(Value::from(id));
                }
            }
        }
        Op::Named => {
            let mut args = args.iter().cloned();
            let name = text(args.next())?;
            let kind = text(args.next())?;
            let kind = Kind::parse(&kind)
                .ok_or_else(|| bad(format!("no kind of object is called {kind}")))?;
            let (kind, rest) = creation(kind, args.collect())?;
            let id = target.named_id(&name);
            let mut argv = vec![
                b"named".to_vec(),
                Vec::new(),
                kind.name().into(),
                name.into_bytes(),
            ];
            argv.extend(rest);
            script(connection, &target.prefix(id), argv)?;
            Ok(Value::from(id))
        }
        Op::RemoveNamed => {
            let name = text(args.first().cloned())?;
            let argv = vec![b"remove".to_vec(), Vec::new(), name.clone().into_bytes()];
            let removed = script(connection, &target.prefix(target.named_id(&name)), argv)?;
            Ok(Value::from(removed == redis::Value::Int(1)))
        }
        Op::KindOf => {
            let id = args
                .first()
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("kind takes an object id"))?;
            let argv = vec![b"kind".to_vec(), Vec::new()];
            answer(Answer::Text, script(connection, &target.prefix(id), argv)?)
        }
        Op::Ping => {
            let _: redis::Value = redis::cmd("PING")
                .query(connection)
                .map_err(|e| error(&e))?;
            Ok(Value::from("pong"))
        }
        Op::Stats => stats(connection, target),
        Op::Shutdown => Ok(Value::Nil), // nothing of ours to stop: the server is Redis's
        op if op.on_manager() => Err(not_on_redis(op.name())),
        op if rewrites_whole_list(op) => {
            whole_list(connection, &target.prefix(object), op, args, fence)
        }
        Op::ObjectCall => object_call(connection, &target.prefix(object), args),
        Op::Watch => watch(connection, &target.prefix(object), args, &store.target),
        Op::DictNested => {
            let (Some(key), Some(kind)) = (args.first(), args.get(1)) else {
                return Err(bad("dict.nested takes [key, \"dict\" or \"list\"]"));
            };
            let kind = kind
                .as_str()
                .ok_or_else(|| bad("a nested container's kind is text"))?;
            loop {
                let id = super::nested_id(object)?;
                let argv = vec![
                    b"dict.nested".to_vec(),
                    kinds(op),
                    encode(key),
                    kind.as_bytes().to_vec(),
                    id.to_be_bytes().to_vec(),
                ];
                match script(connection, &target.prefix(object), argv)? {
                    redis::Value::BulkString(bytes) if bytes.len() == 8 => {
                        let id: [u8; 8] = bytes.try_into().expect("8 bytes");
                        return Ok(Value::from(u64::from_be_bytes(id)));
                    }
                    redis::Value::Nil => {} // the id was taken: another
                    other => return Err(unexpected(&other)),
                }
            }
        }
        Op::ObjectGet => {
            let argv = vec![b"object.snapshot".to_vec(), kinds(op)];
            match script(connection, &target.prefix(object), argv)? {
                redis::Value::Array(mut parts) if parts.len() == 3 => decode(parts.remove(2)),
                other => Err(unexpected(&other)),
            }
        }
        op => {
            let (shape, argv) = call_of(op, args)?;
            let mut full = vec![op.name().as_bytes().to_vec(), fenced(kinds(op), fence)];
            full.extend(argv);
            answer(shape, script(connection, &target.prefix(object), full)?)
        }
    }
}

/// The arguments of a creation of `kind`, as `ops.lua` takes them (a list's items one by one);
/// what the in-memory manager would refuse is refused here too.
fn creation(kind: Kind, args: Vec<Value>) -> Result<(Kind, Vec<Vec<u8>>), ManagerError> {
    let rest = match kind {
        Kind::Dict | Kind::Namespace => Vec::new(),
        Kind::List | Kind::Array => match args.into_iter().next() {
            Some(Value::Array(items)) => items.iter().map(encode).collect(),
            None | Some(Value::Nil) => Vec::new(),
            Some(_) => return Err(bad("a list is made from [items]")),
        },
        Kind::Value => vec![encode(args.first().unwrap_or(&Value::Nil))],
        Kind::Lock | Kind::RLock | Kind::Condition | Kind::Event => Vec::new(),
        Kind::Object => match args.as_slice() {
            [Value::String(name), state] => vec![name.as_bytes().to_vec(), encode(state)],
            _ => return Err(bad("a user type's object is made from [type name, state]")),
        },
        Kind::Barrier => match args.first().and_then(Value::as_u64) {
            Some(0) | None => return Err(bad("a barrier is for at least 1 party")),
            Some(parties) => vec![parties.to_string().into_bytes()],
        },
        Kind::Semaphore | Kind::BoundedSemaphore => match args.first().and_then(Value::as_u64) {
            Some(value) => vec![value.to_string().into_bytes()],
            None => return Err(bad("a semaphore is made from its number of permits")),
        },
        Kind::Queue => match args.first() {
            None | Some(Value::Nil) => Vec::new(),
            Some(max) => match max.as_u64() {
                Some(0) | None => {
                    return Err(bad("a queue's bound is at least 1 (nil: no bound)"));
                }
                Some(max) => vec![max.to_string().into_bytes()],
            },
        },
    };
    Ok((kind, rest))
}

pub(super) fn not_on_redis(what: &str) -> ManagerError {
    ManagerError::Remote {
        code: ErrorCode::NotExposed,
        message: format!("{what} is not on the Redis backend yet (docs/redis.md)"),
    }
}

/// `kinds` with the fencing token a fenced view's call carries (`kinds|token`): the script
/// refuses the call if the object saw a larger one (`StaleFence`), else remembers it.
fn fenced(mut kinds: Vec<u8>, fence: Option<u64>) -> Vec<u8> {
    if let Some(token) = fence {
        kinds.push(b'|');
        kinds.extend(token.to_string().into_bytes());
    }
    kinds
}

/// The kinds `op` applies to, as `ops.lua` checks them.
pub(super) fn kinds(op: Op) -> Vec<u8> {
    let names: Vec<&str> = op.targets().iter().map(|kind| kind.name()).collect();
    names.join(" ").into_bytes()
}

/// What `ops.lua` takes for `op` and how its answer reads.
fn call_of(op: Op, args: &[Value]) -> Result<(Answer, Vec<Vec<u8>>), ManagerError> {
    use Answer::*;
    let each = || args.iter().map(encode).collect::<Vec<_>>();
    Ok(match op {
        Op::DictLen | Op::DictVersion | Op::ListLen | Op::ListCount => (Integer, each()),
        Op::DictGet | Op::DictPop => (Optional, each()),
        Op::DictGetItem
        | Op::DictDel
        | Op::DictSetDefault
        | Op::DictIncr
        | Op::ValueGet
        | Op::ValueFetchAdd => (Encoded, each()),
        Op::DictContains | Op::DictCompareAndSwap | Op::ListContains => (Bool, each()),
        Op::DictSet | Op::DictClear | Op::ValueSet | Op::ListAppend | Op::ListRemoveItem => {
            (Nil, each())
        }
        Op::ListClear => (Nil, Vec::new()),
        Op::DictPopItem => (Pair, Vec::new()),
        Op::DictKeys | Op::ListAll => (Values, Vec::new()),
        Op::DictValues => (Values, Vec::new()),
        Op::DictItems => (Pairs, Vec::new()),
        Op::DictUpdate => {
            let Some(Value::Array(pairs)) = args.first() else {
                return Err(bad("update takes [[key, value], ...]"));
            };
            let mut flat = Vec::with_capacity(pairs.len() * 2);
            for pair in pairs {
                let Some([key, value]) = pair.as_array().map(Vec::as_slice) else {
                    return Err(bad("a pair is [key, value]"));
                };
                flat.push(encode(key));
                flat.push(encode(value));
            }
            (Nil, flat)
        }
        Op::DictGetMany => {
            let Some(Value::Array(keys)) = args.first() else {
                return Err(bad("get_many takes [key, ...]"));
            };
            (Optionals, keys.iter().map(encode).collect())
        }
        Op::ListExtend => {
            let Some(Value::Array(items)) = args.first() else {
                return Err(bad("extend takes [items]"));
            };
            (Nil, items.iter().map(encode).collect())
        }
        Op::ValueCompareExchange => (Exchange, each()),
        Op::ListIndex => (OptionalInteger, each()),
        Op::ListRange => (Values, vec![index(args, 0)?, index(args, 1)?]),
        Op::ListGet | Op::ListRemove => (Encoded, vec![index(args, 0)?]),
        Op::ListSet => (Nil, vec![index(args, 0)?, encode(item(args, 1)?)]),
        Op::ListIncr => (Encoded, vec![index(args, 0)?, encode(item(args, 1)?)]),
        Op::ListInsert => (Nil, vec![index(args, 0)?, encode(item(args, 1)?)]),
        Op::ListPop => match args.first() {
            None | Some(rmpv::Value::Nil) => (Optional, Vec::new()),
            Some(_) => (Optional, vec![index(args, 0)?]),
        },
        other => return Err(not_on_redis(other.name())),
    })
}

/// Whether `op` rearranges a list as a whole: run here on a snapshot ([`whole_list`]).
fn rewrites_whole_list(op: Op) -> bool {
    matches!(
        op,
        Op::ListSlice
            | Op::ListSetSlice
            | Op::ListDelSlice
            | Op::ListReverse
            | Op::ListSort
            | Op::ListRepeat
    )
}

/// Runs `op` on a snapshot of the list with the in-memory manager's code, and writes the result
/// back if the list did not change meanwhile; else again, on a new snapshot.
fn whole_list(
    connection: &mut super::Conn,
    prefix: &str,
    op: Op,
    args: &[Value],
    fence: Option<u64>,
) -> Result<Value, ManagerError> {
    loop {
        let snapshot = script(
            connection,
            prefix,
            vec![b"list.snapshot".to_vec(), fenced(kinds(op), fence)],
        )?;
        let redis::Value::Array(parts) = snapshot else {
            return Err(unexpected(&snapshot));
        };
        let [version, kind, items] = <[redis::Value; 3]>::try_from(parts)
            .map_err(|parts| unexpected(&redis::Value::Array(parts)))?;
        let (redis::Value::Int(version), redis::Value::BulkString(kind)) = (&version, &kind) else {
            return Err(unexpected(&version));
        };
        let mut list = match answer(Answer::Values, items)? {
            Value::Array(list) => list,
            other => return Err(ManagerError::Protocol(format!("not a list: {other}"))),
        };
        let fixed = kind.as_slice() == Kind::Array.name().as_bytes();
        let outcome =
            data::list_op(&mut list, op, args, fixed).map_err(|e| ManagerError::Remote {
                code: ErrorCode::parse(&e.code),
                message: e.message,
            })?;
        if op == Op::ListSlice {
            return Ok(outcome.reply);
        }
        let mut argv = vec![
            b"list.replace".to_vec(),
            fenced(kinds(op), fence),
            version.to_string().into_bytes(),
            list.len().to_string().into_bytes(),
        ];
        argv.extend(list.iter().map(encode));
        argv.extend(outcome.events.iter().map(encode));
        if script(connection, prefix, argv)? == redis::Value::Int(1) {
            return Ok(outcome.reply);
        }
    }
}

/// The counters of `stats`: the namespace's objects (a scan of their meta keys), and Redis's own
/// clients, refused connections and failed authentications (`INFO`), summed over a cluster's
/// primaries.
fn stats(connection: &mut super::Conn, target: &super::Target) -> Result<Value, ManagerError> {
    let pattern = format!("{}m", target.prefix_pattern());
    let mut objects = 0u64;
    let [mut clients, mut wrong_passwords, mut refused] = [0u64; 3];
    for server in connection.servers().map_err(|e| error(&e))? {
        scan(connection, &server, &pattern, |_, keys| {
            objects += keys.len() as u64;
            Ok(())
        })?;
        let info = connection
            .query_on(&server, redis::cmd("INFO").arg("everything"))
            .map_err(|e| error(&e))?;
        let info: String = redis::from_redis_value(info).map_err(|e| error(&e.into()))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| {
                    let value = line.strip_prefix(name)?.strip_prefix(':')?;
                    value.trim().parse::<u64>().ok()
                })
                .unwrap_or(0)
        };
        // Wrong passwords: Redis 7.0 counts them as WRONGPASS replies (7.2 has a field of its
        // own).
        wrong_passwords += info
            .lines()
            .find_map(|line| {
                let count = line.strip_prefix("errorstat_WRONGPASS:count=")?;
                count.trim().parse::<u64>().ok()
            })
            .unwrap_or(0)
            .max(field("acl_access_denied_auth"));
        clients += field("connected_clients");
        refused += field("rejected_connections");
    }
    let entries = [
        ("objects", objects),
        ("connections", clients),
        ("handshakes", 0),
        ("auth_failures", wrong_passwords),
        ("refused", refused),
    ];
    Ok(Value::Map(
        entries
            .into_iter()
            .map(|(name, n)| (Value::from(name), Value::from(n)))
            .collect(),
    ))
}

/// Whether `value` holds the extension the scripts mark nested containers with.
fn holds_nested_slot(value: &Value) -> bool {
    match value {
        Value::Ext(1, _) => true,
        Value::Array(items) => items.iter().any(holds_nested_slot),
        Value::Map(entries) => entries
            .iter()
            .any(|(k, v)| holds_nested_slot(k) || holds_nested_slot(v)),
        _ => false,
    }
}

/// `watch [since, timeout_ms or nil]`: the changes after version `since` once there are some (a
/// wait in `XREAD BLOCK` on the object's log), or none at the deadline.
fn watch(
    connection: &mut super::Conn,
    prefix: &str,
    args: &[Value],
    target: &super::Target,
) -> Result<Value, ManagerError> {
    let since = args
        .first()
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("since is a version number"))?;
    let deadline = super::queue::deadline(args.get(1))?;
    let asked = match since {
        u64::MAX => b"start".to_vec(),
        since => since.to_string().into_bytes(),
    };
    let slice = target.wait_slice();
    loop {
        let argv = vec![b"watch.read".to_vec(), kinds(Op::Watch), asked.clone()];
        let answer = script(connection, prefix, argv)?;
        let redis::Value::Array(parts) = answer else {
            return Err(unexpected(&answer));
        };
        let [version, changes, missed] = <[redis::Value; 3]>::try_from(parts)
            .map_err(|parts| unexpected(&redis::Value::Array(parts)))?;
        let redis::Value::Int(version) = version else {
            return Err(unexpected(&version));
        };
        if let redis::Value::Array(changes) = changes {
            let changes = changes
                .into_iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Value::Array(vec![
                Value::from(version),
                Value::Array(changes),
                Value::from(missed == redis::Value::Int(1)),
            ]));
        }
        let Some(wait) = super::queue::left(deadline, slice) else {
            return Ok(Value::Array(vec![
                Value::from(version),
                Value::Array(Vec::new()),
                Value::from(false),
            ]));
        };
        // Blocks until an entry after the current version is logged (or the slice ends).
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        connection
            .set_read_timeout(Some(wait + super::ANSWER_TIMEOUT))
            .map_err(|e| error(&e))?;
        let read = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(millis)
            .arg("STREAMS")
            .arg(format!("{prefix}log"))
            .arg(format!("{version}-0"))
            .query::<redis::Value>(connection);
        connection
            .set_read_timeout(Some(super::ANSWER_TIMEOUT))
            .map_err(|e| error(&e))?;
        read.map_err(|e| error(&e))?;
    }
}

/// `object.call [method, args]`: runs the method in this process on a snapshot of the object, and
/// writes its new state if nothing was written since; else again, after a short random pause (so
/// that callers racing for one object do not keep colliding).
fn object_call(
    connection: &mut super::Conn,
    prefix: &str,
    args: &[Value],
) -> Result<Value, ManagerError> {
    let (Some(Value::String(method)), Some(call_args)) = (args.first(), args.get(1)) else {
        return Err(bad("object.call takes [method, args]"));
    };
    let method = method
        .as_str()
        .ok_or_else(|| bad("a method's name is UTF-8 text"))?;
    let mut pause = std::time::Duration::from_micros(50);
    loop {
        let argv = vec![b"object.snapshot".to_vec(), kinds(Op::ObjectCall)];
        let snapshot = script(connection, prefix, argv)?;
        let redis::Value::Array(parts) = snapshot else {
            return Err(unexpected(&snapshot));
        };
        let [version, type_name, state] = <[redis::Value; 3]>::try_from(parts)
            .map_err(|parts| unexpected(&redis::Value::Array(parts)))?;
        let (redis::Value::Int(version), redis::Value::BulkString(type_name)) =
            (&version, &type_name)
        else {
            return Err(unexpected(&version));
        };
        let type_name = String::from_utf8_lossy(type_name).into_owned();
        let dispatch =
            super::super::proxy::dispatcher(&type_name).ok_or_else(|| ManagerError::Remote {
                code: ErrorCode::NotExposed,
                message: format!(
                    "this process does not know the type {type_name}: on Redis, a method runs \
                     in its caller, through a typed ObjectProxy<{type_name}>"
                ),
            })?;
        let call = super::super::proxy::MethodCall {
            state: decode(state)?,
            method: method.to_owned(),
            args: call_args.clone(),
        };
        let (state, reply) = dispatch(call).map_err(|(code, message)| ManagerError::Remote {
            code: ErrorCode::parse(&code),
            message,
        })?;
        let argv = vec![
            b"object.replace".to_vec(),
            kinds(Op::ObjectCall),
            version.to_string().into_bytes(),
            encode(&state),
        ];
        if script(connection, prefix, argv)? == redis::Value::Int(1) {
            return Ok(reply);
        }
        let mut jitter = [0u8; 1];
        let _ = getrandom::fill(&mut jitter);
        std::thread::sleep(pause.mul_f64(0.5 + f64::from(jitter[0]) / 255.0));
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Calls `ops.lua` on the object at `prefix` with `argv` (the operation first): `FCALL`, after
/// loading the library if the server does not have it (a new server, a restart, a `FUNCTION
/// FLUSH`: the call did not run, so running it now runs it once).
pub(super) fn script(
    connection: &mut super::Conn,
    prefix: &str,
    argv: Vec<Vec<u8>>,
) -> Result<redis::Value, ManagerError> {
    let size: usize = argv.iter().map(Vec::len).sum();
    if size > frame::DEFAULT_MAX_FRAME {
        return Err(ManagerError::FrameTooLarge {
            len: size,
            max: frame::DEFAULT_MAX_FRAME,
        });
    }
    let (_, name) = &*LIBRARY;
    // (A fenced call may write the object's largest token, whatever its operation.)
    let fenced = argv.get(1).is_some_and(|kinds| kinds.contains(&b'|'));
    let reads = !fenced
        && argv
            .first()
            .is_some_and(|op| READ_ONLY.iter().any(|r| r.as_bytes() == op.as_slice()));
    let mut call = match reads {
        true => {
            let mut call = redis::cmd("FCALL_RO");
            call.arg(format!("{name}_ro"));
            call
        }
        false => {
            let mut call = redis::cmd("FCALL");
            call.arg(name);
            call
        }
    };
    call.arg(1).arg(prefix).arg(&argv);
    match call.query::<redis::Value>(connection) {
        Err(e) if is_function_missing(&e) => {
            load(connection)?;
            call.query::<redis::Value>(connection)
                .map_err(|e| error(&e))
        }
        other => other.map_err(|e| error(&e)),
    }
}

fn is_function_missing(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR") && e.detail().is_some_and(|d| d.contains("Function not found"))
}

/// Loads the library on the server (one that has it already keeps it).
pub(super) fn load(connection: &mut super::Conn) -> Result<(), ManagerError> {
    let (library, _) = &*LIBRARY;
    match redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query::<redis::Value>(connection)
    {
        Ok(_) => Ok(()),
        Err(e) if e.detail().is_some_and(|d| d.contains("already exists")) => Ok(()),
        Err(e)
            if e.code() == Some("ERR")
                && e.detail().is_some_and(|d| d.contains("unknown command")) =>
        {
            Err(ManagerError::Connect(
                crate::channel::ConnectError::Protocol(
                    "this Redis has no functions (FUNCTION LOAD): the backend needs Redis 7 or Valkey 7.2",
                ),
            ))
        }
        Err(e) => Err(error(&e)),
    }
}

/// Removes every key of `target`'s namespace, on every server (a cluster's primaries): the
/// objects removed (their meta keys).
pub(super) fn drop_namespace(
    connection: &mut super::Conn,
    target: &super::Target,
) -> Result<u64, ManagerError> {
    let pattern = format!("{}*", target.prefix_pattern());
    let meta_len = target.prefix(0).len() + 1;
    let mut objects = 0u64;
    for server in connection.servers().map_err(|e| error(&e))? {
        scan(connection, &server, &pattern, |connection, keys| {
            objects += keys
                .iter()
                .filter(|key| key.len() == meta_len && key.ends_with(b"m"))
                .count() as u64;
            // One `UNLINK` for each hash tag: the keys of one command share a cluster's slot.
            let mut by_tag: std::collections::BTreeMap<&[u8], Vec<&[u8]>> = Default::default();
            for key in &keys {
                let tag = key.split(|&b| b == b'}').next().unwrap_or(key);
                by_tag.entry(tag).or_default().push(key);
            }
            for keys in by_tag.values() {
                redis::cmd("UNLINK")
                    .arg(keys)
                    .query::<redis::Value>(connection)
                    .map_err(|e| error(&e))?;
            }
            Ok(())
        })?;
    }
    Ok(objects)
}

/// Every key matching `pattern` on `server`, a page at a time (`SCAN`: a key there all along is
/// in one page at least), given to `page` with the connection.
fn scan(
    connection: &mut super::Conn,
    server: &Option<(String, u16)>,
    pattern: &str,
    mut page: impl FnMut(&mut super::Conn, Vec<Vec<u8>>) -> Result<(), ManagerError>,
) -> Result<(), ManagerError> {
    let mut cursor = 0u64;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let answer = connection.query_on(server, &scan).map_err(|e| error(&e))?;
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::from_redis_value(answer).map_err(|e| error(&e.into()))?;
        page(connection, keys)?;
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

/// The script's answer `raw` as the protocol's, read as `shape` says.
fn answer(shape: Answer, raw: redis::Value) -> Result<Value, ManagerError> {
    use redis::Value as R;
    let optional = |raw: R| -> Result<Value, ManagerError> {
        Ok(match raw {
            R::Nil => Value::Nil,
            other => Value::Array(vec![decode(other)?]),
        })
    };
    let many = |raw: R, each: &dyn Fn(R) -> Result<Value, ManagerError>| match raw {
        R::Array(items) => items
            .into_iter()
            .map(each)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Err(unexpected(&other)),
    };
    match (shape, raw) {
        (Answer::Encoded, raw) => decode(raw),
        (Answer::Optional, raw) => optional(raw),
        (Answer::Integer, R::Int(n)) => Ok(Value::from(n)),
        (Answer::OptionalInteger, R::Nil) => Ok(Value::Nil),
        (Answer::OptionalInteger, R::Int(n)) => Ok(Value::Array(vec![Value::from(n)])),
        (Answer::Bool, R::Int(n)) => Ok(Value::from(n != 0)),
        (Answer::Nil, _) => Ok(Value::Nil),
        (Answer::Values, raw) => many(raw, &decode),
        (Answer::Optionals, raw) => many(raw, &optional),
        (Answer::Pairs, R::Array(flat)) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                pairs.push(Value::Array(vec![decode(key)?, decode(value)?]));
            }
            Ok(Value::Array(pairs))
        }
        (Answer::Pair, raw) => many(raw, &decode),
        (Answer::Exchange, R::Array(parts)) if parts.len() == 2 => {
            let mut parts = parts.into_iter();
            let stored = parts.next() == Some(R::Int(1));
            let previous = decode(parts.next().unwrap_or(R::Nil))?;
            Ok(Value::Array(vec![Value::from(stored), previous]))
        }
        (Answer::Text, R::BulkString(bytes)) => String::from_utf8(bytes)
            .map(Value::from)
            .map_err(|e| ManagerError::Protocol(format!("a kind that is not text: {e}"))),
        (_, other) => Err(unexpected(&other)),
    }
}

/// An encoded value from Redis.
pub(super) fn decode(raw: redis::Value) -> Result<Value, ManagerError> {
    match raw {
        redis::Value::BulkString(bytes) => {
            rmpv::decode::read_value_with_max_depth(&mut bytes.as_slice(), 1024).map_err(|e| {
                ManagerError::Protocol(format!(
                    "a value in Redis that is not MessagePack (another program wrote it?): {e}"
                ))
            })
        }
        other => Err(unexpected(&other)),
    }
}

pub(super) fn unexpected(raw: &redis::Value) -> ManagerError {
    ManagerError::Protocol(format!(
        "an answer from Redis this client does not read: {raw:?}"
    ))
}

/// `value`'s MessagePack encoding: its identity as a key or an item.
fn encode(value: &Value) -> Vec<u8> {
    data::key_of(value)
}

pub(super) fn bad(message: impl Into<String>) -> ManagerError {
    ManagerError::Remote {
        code: ErrorCode::BadArguments,
        message: message.into(),
    }
}

fn text(value: Option<Value>) -> Result<String, ManagerError> {
    match value {
        Some(Value::String(s)) => s.into_str().ok_or_else(|| bad("a name is UTF-8 text")),
        _ => Err(bad("a name is text")),
    }
}

fn item(args: &[Value], i: usize) -> Result<&Value, ManagerError> {
    args.get(i)
        .ok_or_else(|| bad(format!("argument {i} missing")))
}

/// Index argument `i`, an integer (negative from the end), in decimal for the script.
fn index(args: &[Value], i: usize) -> Result<Vec<u8>, ManagerError> {
    let value = item(args, i)?;
    let n = match (value.as_i64(), value.as_u64()) {
        (Some(n), _) => i128::from(n),
        (None, Some(n)) => i128::from(n),
        _ => return Err(bad(format!("an index is an integer, not {value}"))),
    };
    Ok(n.to_string().into_bytes())
}

/// A new object's id: random, the top bit clear (named objects have it set), never 0.
pub(super) fn random_id() -> Result<u64, ManagerError> {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| ManagerError::Os(std::io::Error::other(e.to_string())))?;
        let id = u64::from_ne_bytes(bytes) & !super::NAMED;
        if id != 0 {
            return Ok(id);
        }
    }
}
