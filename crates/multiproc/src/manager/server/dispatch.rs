//! Routing a request to what it operates on: the manager itself (creating objects, by name or
//! not), data (`data`), waiting objects (`waits`), nested containers, watches and user types.

use rmpv::Value;

use super::super::ErrorCode;
use super::super::protocol::wire::{Request, WireError};
use super::super::protocol::{Kind, Op};
use super::data::{self, arg, bad, key_of, not_exposed};
use super::lifetime::Holder;
use super::refs;
use super::table::{Dict, Object, Table, unknown};
use super::waits::{self, Barrier, Condition, Lock, Queue, Semaphore, deadline_arg};
use super::{Caller, Server, Waited};

impl Server {
    /// Runs a request. Its operation must be one of the protocol's, and apply to its object
    /// (the manager itself for object 0): else `NotExposed`, before anything runs.
    pub(crate) fn run(&self, caller: &Caller<'_>, request: Request) -> Result<Value, WireError> {
        let Request {
            op,
            object,
            args,
            context,
            references,
            ..
        } = request;
        let on = |what: &str| not_exposed(&op, what);
        let Some(op) = Op::parse(&op) else {
            return Err(on("this object"));
        };
        if references {
            refuse_references_where_not_stored(op, &args)?;
        }
        if object == 0 && op == Op::OwnerEnd {
            self.release_owner(caller.owner());
            return Ok(Value::Nil);
        }
        let mut table = self.lock_table();
        if object == 0 {
            return match op.on_manager() {
                true => self.run_on_manager(&mut table, caller.client, op, &args, references),
                false => Err(on("the manager")),
            };
        }
        let kind = table.get_mut(object)?.kind();
        if !op.targets().contains(&kind) {
            return Err(on(&format!("a {}", kind.name())));
        }
        if let Some(token) = context.fence {
            table.fenced(object, token)?;
        }
        match op {
            Op::Create(_)
            | Op::Hello
            | Op::OwnerEnd
            | Op::Ping
            | Op::Stats
            | Op::Named
            | Op::RemoveNamed
            | Op::Hold
            | Op::Release
            | Op::Lend
            | Op::KindOf
            | Op::Shutdown => {
                unreachable!("the manager's own operations have no target")
            }
            Op::Watch => self.watch(table, caller, object, &args),
            Op::DictNested => self.nested(&mut table, caller.client, object, &args),
            Op::ObjectGet => self.object_state(&mut table, object),
            Op::ObjectCall => self.call_method(table, caller, object, context.chain, &args),
            Op::LockAcquire
            | Op::LockRelease
            | Op::LockState
            | Op::SemaphoreAcquire
            | Op::SemaphoreRelease
            | Op::SemaphoreValue
            | Op::ConditionWait
            | Op::ConditionNotify
            | Op::EventSet
            | Op::EventClear
            | Op::EventIsSet
            | Op::EventWait
            | Op::BarrierWait
            | Op::BarrierAbort
            | Op::BarrierReset
            | Op::BarrierState
            | Op::QueuePut
            | Op::QueueGet
            | Op::QueueState
            | Op::QueueClose
            | Op::QueueTaskDone
            | Op::QueueJoin => self.run_wait(table, caller, object, op, &args, references),
            Op::DictPopItem
            | Op::DictVersion
            | Op::DictLen
            | Op::DictGet
            | Op::DictGetItem
            | Op::DictSet
            | Op::DictContains
            | Op::DictPop
            | Op::DictDel
            | Op::DictKeys
            | Op::DictValues
            | Op::DictItems
            | Op::DictClear
            | Op::DictSetDefault
            | Op::DictIncr
            | Op::DictCompareAndSwap
            | Op::DictUpdate
            | Op::DictGetMany
            | Op::ListLen
            | Op::ListAll
            | Op::ListRange
            | Op::ListGet
            | Op::ListSet
            | Op::ListIncr
            | Op::ListContains
            | Op::ListCount
            | Op::ListIndex
            | Op::ListAppend
            | Op::ListExtend
            | Op::ListInsert
            | Op::ListPop
            | Op::ListRemove
            | Op::ListClear
            | Op::ListSlice
            | Op::ListSetSlice
            | Op::ListDelSlice
            | Op::ListRemoveItem
            | Op::ListReverse
            | Op::ListSort
            | Op::ListRepeat
            | Op::ValueGet
            | Op::ValueSet
            | Op::ValueFetchAdd
            | Op::ValueCompareExchange => {
                self.run_on_data(&mut table, caller.client, object, op, &args, references)
            }
        }
    }

    /// Runs an operation of the manager itself, for `client`. Each object id it answers with is
    /// a hold of `client`'s (given up with `release`, or when the client disconnects).
    fn run_on_manager(
        &self,
        table: &mut Table,
        client: u64,
        op: Op,
        args: &[Value],
        references: bool,
    ) -> Result<Value, WireError> {
        if table.expire_loans() {
            self.changed.notify_all();
        }
        if references {
            table.check_references(args)?;
        }
        let you = Holder::Client(client);
        match op {
            Op::Ping => Ok(Value::from("pong")),
            Op::Stats => Ok(self.stats(table)),
            Op::Named => {
                let name = string_arg(args, 0)?;
                let kind = string_arg(args, 1)?;
                let kind = Kind::parse(&kind).ok_or_else(|| bad(format!("no kind {kind}")))?;
                let rest = args.get(2..).unwrap_or_default();
                if let Some(&id) = table.names.get(&name) {
                    let existing = table.objects.get(&id);
                    let same_type = match existing {
                        Some(Object::User { type_name, .. }) => {
                            rest.first().and_then(Value::as_str) == Some(type_name.as_str())
                        }
                        _ => true,
                    };
                    let existing = existing.map(Object::kind);
                    if existing != Some(kind) || !same_type {
                        let is = existing.map_or("a removed object", Kind::name);
                        return Err(WireError::new(
                            ErrorCode::WrongKind,
                            format!("{name} is a {is}"),
                        ));
                    }
                    table.hold(client, id)?;
                    return Ok(Value::from(id));
                }
                let id = table.insert(self.create(kind, rest)?, Holder::Name);
                if references {
                    table.contain(id, &rest.iter().collect::<Vec<_>>());
                }
                table.names.insert(name, id);
                table.hold(client, id)?;
                Ok(Value::from(id))
            }
            Op::RemoveNamed => Ok(Value::from(table.remove_name(&string_arg(args, 0)?))),
            Op::Create(kind) => {
                let id = table.insert(self.create(kind, args)?, you);
                if references {
                    table.contain(id, &args.iter().collect::<Vec<_>>());
                }
                Ok(Value::from(id))
            }
            Op::Hold => {
                let object = id_arg(args, 0)?;
                let loan = match args.get(1) {
                    None | Some(Value::Nil) => 0,
                    Some(_) => id_arg(args, 1)?,
                };
                table.claim(client, object, loan)?;
                Ok(Value::Nil)
            }
            Op::Release => {
                let object = id_arg(args, 0)?;
                let before = table.objects.len();
                if !table.release(object, you) {
                    return Err(bad(format!("this client holds no object {object}")));
                }
                if table.objects.len() < before {
                    // Waits on what was freed end.
                    self.changed.notify_all();
                }
                Ok(Value::Nil)
            }
            Op::Lend => Ok(Value::from(table.lend(id_arg(args, 0)?)?)),
            Op::KindOf => {
                let object = id_arg(args, 0)?;
                let kind = table.get_mut(object)?.kind();
                Ok(Value::from(kind.name()))
            }
            // `shutdown` is answered by the connection, which then stops the server.
            _ => Err(not_exposed(op.name(), "the manager")),
        }
    }

    /// A new object of `kind`, made from `args`.
    fn create(&self, kind: Kind, args: &[Value]) -> Result<Object, WireError> {
        Ok(match kind {
            Kind::Dict => Object::Dict(Dict::new()),
            Kind::Namespace => Object::Namespace(Dict::new()),
            Kind::List => Object::List(items_arg(args)?),
            Kind::Array => Object::Array(items_arg(args)?),
            Kind::Value => Object::Value(arg(args, 0)?.clone()),
            Kind::Lock => Object::Lock(Lock::default()),
            Kind::RLock => Object::RLock(Lock::default()),
            Kind::Semaphore | Kind::BoundedSemaphore => Object::Semaphore(Semaphore::new(
                count_arg(args, 0)?,
                kind == Kind::BoundedSemaphore,
            )),
            Kind::Condition => Object::Condition(Condition::default()),
            Kind::Event => Object::Event(false),
            Kind::Barrier => match count_arg(args, 0)? {
                0 => return Err(bad("a barrier has one party at least")),
                parties => Object::Barrier(Barrier::new(parties)),
            },
            Kind::Queue => Object::Queue(Queue::new(match args.first() {
                None | Some(Value::Nil) => None,
                Some(_) => match count_arg(args, 0)? {
                    0 => return Err(bad("a bounded queue holds one item at least")),
                    n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                },
            })),
            Kind::Object => {
                let type_name = string_arg(args, 0)?;
                if !self.types.contains_key(&type_name) {
                    return Err(WireError::new(
                        ErrorCode::NotExposed,
                        format!("no type {type_name} is registered with this manager"),
                    ));
                }
                Object::User {
                    type_name,
                    state: arg(args, 1)?.clone(),
                    running: None,
                }
            }
        })
    }

    fn stats(&self, table: &Table) -> Value {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.counters;
        let entry = |name: &str, n: u64| (Value::from(name), Value::from(n));
        Value::Map(vec![
            entry("objects", table.objects.len() as u64),
            entry("connections", counters.connections.load(Relaxed) as u64),
            entry("handshakes", counters.handshakes.load(Relaxed) as u64),
            entry("auth_failures", counters.auth_failures.load(Relaxed)),
            entry("refused", counters.refused.load(Relaxed)),
        ])
    }

    /// Runs an operation on data for `client`; `references`: its arguments hold stored proxies.
    /// The references a value holds count for lifetime while it is stored, and each one a reply
    /// carries is a hold of the reader's.
    fn run_on_data(
        &self,
        table: &mut Table,
        client: u64,
        object: u64,
        op: Op,
        args: &[Value],
        references: bool,
    ) -> Result<Value, WireError> {
        if references {
            table.check_references(args)?;
        }
        let outcome = match table.get_mut(object)? {
            Object::Dict(dict) => data::dict_op(dict, op, args)?,
            Object::List(list) => data::list_op(list, op, args, false)?,
            Object::Namespace(dict) => data::namespace_op(dict, op, args)?,
            Object::Array(items) => data::list_op(items, op, args, true)?,
            Object::Value(value) => {
                let replaces = matches!(op, Op::ValueSet | Op::ValueCompareExchange);
                let old = replaces.then(|| value.clone());
                let reply = data::value_op(value, op, args)?;
                let new = old.is_some().then(|| value.clone());
                table.hand_over(client, &reply);
                if let (Some(old), Some(new)) = (old, new) {
                    table.contain(object, &[&new]);
                    if table.uncontain(object, &[old]) {
                        self.changed.notify_all();
                    }
                }
                return Ok(reply);
            }
            _ => return Err(not_exposed(op.name(), "this object")),
        };
        let watchable = matches!(
            table.objects.get(&object),
            Some(Object::Dict(_) | Object::List(_))
        );
        let reply = table.materialize(outcome.reply);
        table.hand_over(client, &reply);
        // A repeat copies the references the list holds.
        if references || op == Op::ListRepeat {
            table.contain(object, &data::stored(&outcome.events));
        }
        let removed = table.uncontain(object, &outcome.dropped);
        let logged = watchable && table.log(object, outcome.events);
        if removed || logged {
            // Watchers of what was removed end, watchers of the object see the change.
            self.changed.notify_all();
        }
        Ok(reply)
    }

    /// `dict.nested [key, kind]`: the id of the dict or list nested at `key`, created empty if the
    /// key is absent. A value of another kind there is `TypeError`.
    fn nested(
        &self,
        table: &mut Table,
        client: u64,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let key = arg(args, 0)?.clone();
        let kind = string_arg(args, 1)?;
        let Object::Dict(dict) = table.get_mut(object)? else {
            return Err(not_exposed(Op::DictNested.name(), "this object"));
        };
        let existing = dict
            .get(&key_of(&key))
            .map(|(_, value)| refs::nested_id(value));
        let not_that = || {
            WireError::new(
                ErrorCode::TypeError,
                format!("the value at {key} is not a {kind}"),
            )
        };
        let wanted = Kind::parse(&kind);
        match existing {
            Some(Some(id)) if table.objects.get(&id).map(Object::kind) == wanted => {
                table.hold(client, id)?;
                Ok(Value::from(id))
            }
            Some(_) => Err(not_that()),
            None => {
                let child = match wanted {
                    Some(Kind::Dict) => Object::Dict(Dict::new()),
                    Some(Kind::List) => Object::List(Vec::new()),
                    _ => return Err(bad("a nested container is a dict or a list")),
                };
                let id = table.insert_nested(object, child)?;
                if let Ok(Object::Dict(dict)) = table.get_mut(object) {
                    dict.insert(key_of(&key), (key.clone(), refs::nested(id)));
                }
                table.hold(client, id)?;
                let event = Value::Array(vec!["nested".into(), key, Value::from(kind)]);
                if table.log(object, vec![event]) {
                    self.changed.notify_all();
                }
                Ok(Value::from(id))
            }
        }
    }

    /// `watch [since, timeout_ms or nil]`: waits until the dict or list has changes after version
    /// `since`, or the timeout. Gives `[version, [event, ...], missed]`, where `missed` says that
    /// changes older than the log were dropped.
    fn watch(
        &self,
        table: std::sync::MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let since = arg(args, 0)?
            .as_u64()
            .ok_or_else(|| bad("since is a version number"))?;
        let deadline = deadline_arg(args, 1)?;
        let mut table = table;
        table.watched.insert(object);
        let (table, waited) = self.wait_for(table, caller, deadline, |table| {
            // An object freed while it was watched (no proxy held it: a client of the raw
            // protocol watching an id): its watchers end, as every other call on it does.
            if !table.objects.contains_key(&object) {
                return Err(unknown(object));
            }
            let log = table.logs.entry(object).or_default();
            if log.version <= since || since == u64::MAX {
                return Ok(None);
            }
            let missed = log.events.front().is_some_and(|(v, _)| *v > since + 1);
            let events = log
                .events
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, e)| e.clone())
                .collect();
            Ok(Some(Value::Array(vec![
                Value::from(log.version),
                Value::Array(events),
                Value::from(missed),
            ])))
        });
        let mut table = table;
        match waited? {
            Waited::Done(answer) => {
                table.hand_over(caller.client, &answer);
                Ok(answer)
            }
            Waited::TimedOut => {
                let version = table.logs.get(&object).map_or(0, |log| log.version);
                Ok(Value::Array(vec![
                    Value::from(version),
                    Value::Array(Vec::new()),
                    Value::from(false),
                ]))
            }
            Waited::CallerGone => Err(waits::caller_gone()),
        }
    }
}

/// Refuses a request whose references (stored proxies) would not be stored as values: a proxy is
/// a dict's or a namespace's value, a list's or an array's item, a value, a queue's item; never a
/// key, nor an argument of a user type's method or of a waiting object.
fn refuse_references_where_not_stored(op: Op, args: &[Value]) -> Result<(), WireError> {
    let stores = match op {
        Op::Create(kind) => matches!(kind, Kind::List | Kind::Array | Kind::Value),
        // A named object's arguments after its name and kind, as its creation's.
        Op::Named => matches!(
            args.get(1).and_then(Value::as_str).and_then(Kind::parse),
            Some(Kind::List | Kind::Array | Kind::Value)
        ),
        Op::QueuePut => true,
        _ => op.targets().iter().any(|kind| {
            matches!(
                kind,
                Kind::Dict | Kind::Namespace | Kind::List | Kind::Array | Kind::Value
            )
        }),
    };
    let keys: Vec<&Value> = match op {
        Op::DictSet
        | Op::DictSetDefault
        | Op::DictIncr
        | Op::DictCompareAndSwap
        | Op::DictNested => args.first().into_iter().collect(),
        Op::DictUpdate => args
            .first()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|pair| pair.as_array()?.first())
            .collect(),
        _ => Vec::new(),
    };
    if !stores {
        return Err(bad(format!(
            "{} takes no proxy: proxies are stored as the values of dicts, namespaces, lists, \
             arrays, values and queues",
            op.name()
        )));
    }
    if keys.into_iter().any(refs::has_references) {
        return Err(bad("a proxy cannot be a dict's key (it can be a value)"));
    }
    Ok(())
}

fn string_arg(args: &[Value], index: usize) -> Result<String, WireError> {
    arg(args, index)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("argument {index} is not a string")))
}

fn id_arg(args: &[Value], index: usize) -> Result<u64, WireError> {
    arg(args, index)?
        .as_u64()
        .ok_or_else(|| bad(format!("argument {index} is not an id")))
}

fn count_arg(args: &[Value], index: usize) -> Result<u64, WireError> {
    match args.get(index) {
        None | Some(Value::Nil) => Ok(0),
        Some(n) => n
            .as_u64()
            .ok_or_else(|| bad(format!("argument {index} is not a count"))),
    }
}

fn items_arg(args: &[Value]) -> Result<Vec<Value>, WireError> {
    match args.first() {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(bad("takes [items]")),
    }
}

#[cfg(test)]
mod tests {
    //! The pairing of client and server cannot drift: every operation the proxies can send is
    //! dispatched by the server on the kinds it names, and refused on the others.

    use rmpv::Value;
    use serde::{Deserialize, Serialize};

    use super::super::super::client::Session;
    use super::super::super::protocol::{Kind, Op};
    use super::super::super::proxy::{Args, CallError, Reply, Shared, entry_for};
    use super::super::super::{ErrorCode, ManagerError};
    use crate::address::Address;
    use crate::sys::StreamListener;

    #[derive(Serialize, Deserialize)]
    struct Probe;

    impl Shared for Probe {
        const TYPE_NAME: &'static str = "Probe";

        fn call(&mut self, _: &str, _: Args) -> Result<Reply, CallError> {
            Ok(Reply::unit())
        }
    }

    /// Arguments that make a `kind`.
    fn made_from(kind: Kind) -> Vec<Value> {
        match kind {
            Kind::List | Kind::Array => vec![Value::Array(vec![1.into()])],
            Kind::Value | Kind::Semaphore | Kind::BoundedSemaphore | Kind::Barrier => {
                vec![1.into()]
            }
            Kind::Queue => vec![Value::Nil],
            Kind::Object => vec!["Probe".into(), Value::Nil],
            _ => Vec::new(),
        }
    }

    fn code(result: Result<Value, ManagerError>) -> Option<ErrorCode> {
        result.err().and_then(|e| e.code().cloned())
    }

    #[test]
    fn every_operation_is_dispatched_on_its_kinds_and_refused_on_the_others() {
        let dir = std::env::temp_dir().join(format!("multiproc-ops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let address = Address::Unix(dir.join("manager.sock"));
        let listener = StreamListener::bind(&address).unwrap();
        let types = vec![(
            Probe::TYPE_NAME.to_owned(),
            super::super::Methods::Compiled(entry_for::<Probe>()),
        )];
        let server = std::thread::spawn(move || {
            super::super::serve(
                listener,
                b"key".to_vec(),
                types,
                Vec::new(),
                super::super::DEFAULT_LOAN_GRACE,
            )
        });
        let session = Session::open(
            &crate::manager::client::Endpoint::Manager(address.clone()),
            b"key",
        )
        .unwrap();
        let call = |op, object, args| session.call(op, object, args, 0);
        let objects: Vec<(Kind, u64)> = Kind::ALL
            .into_iter()
            .map(|kind| {
                let id = call(Op::Create(kind), 0, made_from(kind)).unwrap();
                (kind, id.as_u64().unwrap())
            })
            .collect();
        // Arguments every operation can take without waiting: a zero is a timeout of 0 ms.
        let args = || vec![Value::from(0), Value::from(0), Value::from(0)];
        for op in Op::all().filter(|&op| op != Op::Shutdown) {
            for &(kind, id) in &objects {
                let on = op.targets().contains(&kind);
                let got = code(call(op, id, args()));
                if on {
                    assert!(
                        !matches!(got, Some(ErrorCode::NotExposed | ErrorCode::UnknownObject)),
                        "{} on a {}: {got:?}",
                        op.name(),
                        kind.name()
                    );
                } else {
                    assert_eq!(
                        got,
                        Some(ErrorCode::NotExposed),
                        "{} on a {}",
                        op.name(),
                        kind.name()
                    );
                }
            }
            let on_manager = code(call(op, 0, args()));
            if op.on_manager() {
                assert_ne!(
                    on_manager,
                    Some(ErrorCode::NotExposed),
                    "{} on the manager",
                    op.name()
                );
            } else {
                assert_eq!(
                    on_manager,
                    Some(ErrorCode::NotExposed),
                    "{} on the manager",
                    op.name()
                );
            }
        }
        let unknown = Value::from("dict.nope");
        assert_eq!(
            code(call(Op::Ping, 0, vec![unknown])),
            None,
            "ping takes what it is given"
        );
        call(Op::Shutdown, 0, Vec::new()).unwrap();
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
