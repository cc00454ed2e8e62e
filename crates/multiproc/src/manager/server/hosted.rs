//! Objects of registered user types: their methods run outside the table's lock, one at a time
//! per object, each on a call chain (`manager::chain`), so that a method may use proxies of its
//! own manager, and a call that would wait for itself is refused instead of hanging.
//!
//! A call waits (the table released) until no other method of its object runs, marks the object
//! as running on its chain, runs the method on a copy of the state without the table, and stores
//! the new state back (an error or a panic keeps the old one). Reading the state (`object_get`)
//! does not wait: it gives the state the last call left. A call is refused with `WouldDeadlock`
//! when its object runs on its own chain (a method calling its own object), or on a chain that
//! waits, through others, for an object running on its chain (two methods calling each other's
//! objects).

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use rmpv::Value;

use super::super::ErrorCode;
use super::super::chain;
use super::super::protocol::wire::WireError;
use super::super::proxy::{Handler, MethodCall, TypeEntry, run_handler};
use super::data::arg;
use super::table::{Object, Table};
use super::waits::caller_gone;
use super::{Caller, Server, Waited};

/// Where the server's chain numbers start: random, so that a chain from another server (a
/// method of one manager calling another) is no chain of this one.
pub(crate) fn first_chain() -> u64 {
    let mut seed = [0u8; 8];
    // Without randomness, a fixed start: chains from another server could then be taken for
    // ours, which refuses a call at worst, never lets one hang.
    let _ = getrandom::fill(&mut seed);
    u64::from_ne_bytes(seed)
}

impl Server {
    /// The state of user object `object`, as the last call left it.
    pub(crate) fn object_state(&self, table: &mut Table, object: u64) -> Result<Value, WireError> {
        match table.get_mut(object)? {
            Object::User { state, .. } => Ok(state.clone()),
            _ => Err(not_hosted(object)),
        }
    }

    /// Runs method `args[0]` of user object `object` with arguments `args[1]`, on `chain` (the
    /// caller's, from inside a method) or a new one.
    pub(crate) fn call_method(
        &self,
        table: MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        object: u64,
        chain: Option<u64>,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let method = arg(args, 0)?
            .as_str()
            .ok_or_else(|| super::data::bad("argument 0 is not a method name"))?
            .to_owned();
        let method_args = arg(args, 1)?.clone();
        let chain = chain.unwrap_or_else(|| self.next_chain.fetch_add(1, Ordering::Relaxed));
        let (mut table, waited) =
            self.wait_for(table, caller, None, |table| table.start_call(object, chain));
        table.waiting.remove(&chain);
        let (type_name, state) = match waited? {
            Waited::Done(started) => started,
            Waited::TimedOut => unreachable!("a method call waits without a deadline"),
            Waited::CallerGone => return Err(caller_gone()),
        };
        drop(table);
        let mut running = Running {
            server: self,
            object,
            chain,
            new_state: None,
        };
        let methods = self
            .types
            .get(type_name.as_str())
            .expect("checked at creation")
            .clone();
        let call = MethodCall {
            state,
            method,
            args: method_args,
        };
        match chain::within(chain, || run_method(&methods, call)) {
            Ok((new_state, reply)) => {
                running.new_state = Some(new_state);
                Ok(reply)
            }
            Err((code, message)) => Err(WireError::new(ErrorCode::parse(&code), message)),
        }
    }
}

/// A method running: when it ends (or unwinds), its object takes the new state, if any, and is
/// free for the next call.
struct Running<'a> {
    server: &'a Server,
    object: u64,
    chain: u64,
    new_state: Option<Value>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut table = self.server.lock_table();
        // Gone if it was removed meanwhile: the new state goes with it.
        if let Ok(Object::User { state, running, .. }) = table.get_mut(self.object) {
            if *running == Some(self.chain) {
                *running = None;
                if let Some(new_state) = self.new_state.take() {
                    *state = new_state;
                }
            }
        }
        drop(table);
        self.server.changed.notify_all();
    }
}

impl Table {
    /// Starts a call of `object` on `chain`: its type and a copy of its state once no other call
    /// runs it (`None` until then), `WouldDeadlock` if that would never come.
    fn start_call(
        &mut self,
        object: u64,
        chain: u64,
    ) -> Result<Option<(String, Value)>, WireError> {
        let Object::User {
            type_name,
            state,
            running,
        } = self.get_mut(object)?
        else {
            return Err(not_hosted(object));
        };
        let owner = match *running {
            None => {
                *running = Some(chain);
                return Ok(Some((type_name.clone(), state.clone())));
            }
            Some(owner) => owner,
        };
        if owner == chain {
            return Err(WireError::new(
                ErrorCode::WouldDeadlock,
                format!(
                    "object {object} is running the method that made this call: it would wait for itself"
                ),
            ));
        }
        if self.waits_for(owner, chain) {
            return Err(WireError::new(
                ErrorCode::WouldDeadlock,
                format!(
                    "object {object} is running a method that waits, through other calls, for \
                     this call's own method: neither could end"
                ),
            ));
        }
        self.waiting.insert(chain, object);
        Ok(None)
    }

    /// Whether chain `owner` waits, directly or through other chains, for an object that runs on
    /// `chain`.
    fn waits_for(&self, owner: u64, chain: u64) -> bool {
        let mut current = owner;
        // Each step follows a different waiting chain, or goes round a cycle without `chain`.
        for _ in 0..=self.waiting.len() {
            let Some(object) = self.waiting.get(&current) else {
                return false;
            };
            let Some(Object::User {
                running: Some(next),
                ..
            }) = self.objects.get(object)
            else {
                return false;
            };
            if *next == chain {
                return true;
            }
            current = *next;
        }
        false
    }
}

/// The methods of a registered user type: compiled into the program (a [`Shared`] type), or
/// given at run time by the program that embeds the server (a handler: its code is the host's,
/// in whatever language; nothing from the wire runs).
///
/// [`Shared`]: crate::Shared
#[derive(Clone)]
pub(crate) enum Methods {
    Compiled(TypeEntry),
    Handler(Handler),
}

/// Runs a registered type's method. A compiled entry was registered in this process (`serve`)
/// or reached it as an argument of this server process, over the bootstrap channel from its
/// parent: one of the sources `EntryPoint`'s invariant allows. Clients only name registered
/// types.
fn run_method(methods: &Methods, call: MethodCall) -> Result<(Value, Value), (String, String)> {
    match methods {
        Methods::Compiled(entry) => match entry.invoke(call) {
            Ok(outcome) => outcome,
            Err(_) => Err((
                "NotExposed".into(),
                "the type's code is not in this server's executable".into(),
            )),
        },
        Methods::Handler(handler) => run_handler(handler, call),
    }
}

fn not_hosted(object: u64) -> WireError {
    WireError::new(
        ErrorCode::NotExposed,
        format!("object {object} is not of a registered type"),
    )
}
