//! Routing a request to what it operates on: the manager itself (creating objects, by name or
//! not), data (`data`), waiting objects (`waits`), nested containers, watches and user types.

use rmpv::Value;

use super::super::ErrorCode;
use super::super::shared::{MethodCall, TypeEntry};
use super::super::wire::{Request, WireError};
use super::data::{self, arg, bad, key_of, not_exposed};
use super::table::{Dict, Object, Table, reference, referenced};
use super::waits::{self, Barrier, Condition, Lock, Queue, Semaphore, deadline_arg};
use super::{Caller, Server, Waited};

impl Server {
    pub(crate) fn run(&self, caller: &Caller<'_>, request: Request) -> Result<Value, WireError> {
        let Request {
            op, object, args, ..
        } = request;
        let mut table = self.lock_table();
        if object == 0 {
            return self.run_on_manager(&mut table, &op, &args);
        }
        match op.as_str() {
            "watch" => self.watch(table, caller, object, &args),
            "dict.nested" => self.nested(&mut table, object, &args),
            "object.call" | "object.get" => self.run_on_user_object(&mut table, object, &op, &args),
            _ if waits::handles(&op) => self.run_wait(table, caller, object, &op, &args),
            _ => self.run_on_data(&mut table, object, &op, &args),
        }
    }

    fn run_on_manager(
        &self,
        table: &mut Table,
        op: &str,
        args: &[Value],
    ) -> Result<Value, WireError> {
        match op {
            "ping" => Ok(Value::from("pong")),
            "stats" => Ok(self.stats(table)),
            "named" => {
                let name = string_arg(args, 0)?;
                let kind = string_arg(args, 1)?;
                let rest = args.get(2..).unwrap_or_default();
                if let Some(&id) = table.names.get(&name) {
                    let existing = table.objects.get(&id).map(Object::kind);
                    let same_type = match table.objects.get(&id) {
                        Some(Object::User { type_name, .. }) => {
                            rest.first().and_then(Value::as_str) == Some(type_name.as_str())
                        }
                        _ => true,
                    };
                    if existing != Some(kind_name(&kind)) || !same_type {
                        return Err(WireError::new(
                            ErrorCode::WrongKind,
                            format!("{name} is a {}", existing.unwrap_or("removed object")),
                        ));
                    }
                    return Ok(Value::from(id));
                }
                let id = table.insert(self.create(&kind, rest)?);
                table.names.insert(name, id);
                Ok(Value::from(id))
            }
            kind => Ok(Value::from(table.insert(self.create(kind, args)?))),
        }
    }

    /// A new object of `kind`, made from `args`.
    fn create(&self, kind: &str, args: &[Value]) -> Result<Object, WireError> {
        Ok(match kind {
            "dict" => Object::Dict(Dict::new()),
            "namespace" => Object::Namespace(Dict::new()),
            "list" => Object::List(items_arg(args)?),
            "array" => Object::Array(items_arg(args)?),
            "value" => Object::Value(arg(args, 0)?.clone()),
            "lock" => Object::Lock(Lock::default()),
            "rlock" => Object::RLock(Lock::default()),
            "semaphore" | "bounded_semaphore" => Object::Semaphore(Semaphore::new(
                count_arg(args, 0)?,
                kind == "bounded_semaphore",
            )),
            "condition" => Object::Condition(Condition::default()),
            "event" => Object::Event(false),
            "barrier" => match count_arg(args, 0)? {
                0 => return Err(bad("a barrier has one party at least")),
                parties => Object::Barrier(Barrier::new(parties)),
            },
            "queue" => Object::Queue(Queue::new(
                usize::try_from(count_arg(args, 0)?).unwrap_or(usize::MAX),
            )),
            "object.new" => {
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
                }
            }
            _ => return Err(not_exposed(kind, "the manager")),
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

    fn run_on_data(
        &self,
        table: &mut Table,
        object: u64,
        op: &str,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let outcome = match table.get_mut(object)? {
            Object::Dict(dict) => data::dict_op(dict, op, args)?,
            Object::List(list) => data::list_op(list, op, args, false)?,
            Object::Namespace(dict) => data::namespace_op(dict, op, args)?,
            Object::Array(items) => data::list_op(items, op, args, true)?,
            Object::Value(value) => return data::value_op(value, op, args),
            _ => return Err(not_exposed(op, "this object")),
        };
        let watchable = matches!(
            table.objects.get(&object),
            Some(Object::Dict(_) | Object::List(_))
        );
        let reply = table.materialize(outcome.reply);
        table.drop_nested(outcome.dropped);
        if watchable && table.log(object, outcome.events) {
            self.changed.notify_all();
        }
        Ok(reply)
    }

    /// `dict.nested [key, kind]`: the id of the dict or list nested at `key`, created empty if the
    /// key is absent. A value of another kind there is `TypeError`.
    fn nested(&self, table: &mut Table, object: u64, args: &[Value]) -> Result<Value, WireError> {
        let key = arg(args, 0)?.clone();
        let kind = string_arg(args, 1)?;
        let Object::Dict(dict) = table.get_mut(object)? else {
            return Err(not_exposed("dict.nested", "this object"));
        };
        let existing = dict.get(&key_of(&key)).map(|(_, value)| referenced(value));
        let not_that = || {
            WireError::new(
                ErrorCode::TypeError,
                format!("the value at {key} is not a {kind}"),
            )
        };
        match existing {
            Some(Some(id)) if table.objects.get(&id).map(Object::kind) == Some(&*kind) => {
                Ok(Value::from(id))
            }
            Some(_) => Err(not_that()),
            None => {
                let child = match kind.as_str() {
                    "dict" => Object::Dict(Dict::new()),
                    "list" => Object::List(Vec::new()),
                    _ => return Err(bad("a nested container is a dict or a list")),
                };
                let id = table.insert_nested(object, child)?;
                if let Ok(Object::Dict(dict)) = table.get_mut(object) {
                    dict.insert(key_of(&key), (key.clone(), reference(id)));
                }
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
        if !matches!(
            table.objects.get(&object),
            Some(Object::Dict(_) | Object::List(_))
        ) {
            return match table.objects.get(&object) {
                None => Err(super::table::unknown(object)),
                Some(_) => Err(not_exposed("watch", "this object (only dicts and lists)")),
            };
        }
        let since = arg(args, 0)?
            .as_u64()
            .ok_or_else(|| bad("since is a version number"))?;
        let deadline = deadline_arg(args, 1)?;
        let mut table = table;
        table.watched.insert(object);
        let (table, waited) = self.wait_for(table, caller, deadline, |table| {
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
        match waited? {
            Waited::Done(answer) => Ok(answer),
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

    fn run_on_user_object(
        &self,
        table: &mut Table,
        object: u64,
        op: &str,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let Object::User { type_name, state } = table.get_mut(object)? else {
            return Err(WireError::new(
                ErrorCode::NotExposed,
                format!("object {object} is not of a registered type"),
            ));
        };
        if op == "object.get" {
            return Ok(state.clone());
        }
        let entry = *self
            .types
            .get(type_name.as_str())
            .expect("checked at creation");
        let call = MethodCall {
            state: state.clone(),
            method: string_arg(args, 0)?,
            args: arg(args, 1)?.clone(),
        };
        match run_method(entry, call) {
            Ok((new_state, reply)) => {
                *state = new_state;
                Ok(reply)
            }
            Err((code, message)) => Err(WireError::new(ErrorCode::parse(&code), message)),
        }
    }
}

/// The kind `named` compares: a user object's kind is `object` whatever it was created as.
fn kind_name(kind: &str) -> &str {
    match kind {
        "object.new" => "object",
        other => other,
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

fn string_arg(args: &[Value], index: usize) -> Result<String, WireError> {
    arg(args, index)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("argument {index} is not a string")))
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
