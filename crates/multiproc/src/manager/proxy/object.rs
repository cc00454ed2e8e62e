//! User types hosted by a manager: a type implements [`Shared`] (its methods, by name), is
//! registered with [`ManagerBuilder::register`](crate::ManagerBuilder::register), and is reached
//! through an [`ObjectProxy`].
//!
//! The server runs only code compiled into it: a registered type's dispatch function travels to
//! the server process as an entry point of this same executable (as a [`Process`](crate::Process)
//! function does), never as data to interpret. The object lives in the server as its serialized
//! state; a call decodes it, runs the method, and stores it back. Calls of one object run one at
//! a time, so each is atomic; they run outside the lock of the server's table, so a method may
//! use proxies of its own manager (and other objects' calls go on meanwhile). A method that calls
//! its own object, directly or through other objects' methods, gets
//! [`ErrorCode::WouldDeadlock`](crate::ErrorCode::WouldDeadlock) for that call at once: it would
//! wait for itself.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{from_value, proxy, to_value};
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op, value};
use crate::sys::image::EntryPoint;

/// A type whose values a manager can host, with methods callable by name from any process.
///
/// ```
/// use multiproc::{Args, CallError, Reply, Shared};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter {
///     n: i64,
/// }
///
/// impl Shared for Counter {
///     const TYPE_NAME: &'static str = "Counter";
///
///     fn call(&mut self, method: &str, args: Args) -> Result<Reply, CallError> {
///         match method {
///             "add" => {
///                 self.n += args.decode::<i64>()?;
///                 Reply::of(&self.n)
///             }
///             "get" => Reply::of(&self.n),
///             _ => Err(CallError::not_exposed(method)),
///         }
///     }
/// }
/// ```
pub trait Shared: Serialize + DeserializeOwned + 'static {
    /// The name the type is registered under (unique per manager).
    const TYPE_NAME: &'static str;

    /// Runs method `method` with `args`. A panic here is the caller's error
    /// ([`ManagerError::Remote`] with code `Panicked`); the server goes on, and the object keeps
    /// its state from before the call.
    ///
    /// No other call of this object runs meanwhile; calls of other objects and every other
    /// operation do, and the method may make them, through proxies of this manager
    /// ([`Manager::connect`](crate::Manager::connect) to its address). A call of this very object
    /// from inside (or of an object whose method is waiting for this one) is refused with
    /// [`ErrorCode::WouldDeadlock`](crate::ErrorCode::WouldDeadlock), on the thread that runs
    /// the method; a thread the method starts is another client, and waits like one.
    fn call(&mut self, method: &str, args: Args) -> Result<Reply, CallError>;
}

/// A method's arguments, as the caller sent them.
#[derive(Debug)]
pub struct Args(Value);

impl Args {
    /// The arguments as a `T` (a tuple for several).
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, CallError> {
        value::from_value(self.0).map_err(CallError::BadArguments)
    }
}

/// A method's result.
#[derive(Debug)]
pub struct Reply(Value);

impl Reply {
    /// `value`, serialized for the caller.
    pub fn of<T: Serialize>(value: &T) -> Result<Reply, CallError> {
        value::to_value(value)
            .map(Reply)
            .map_err(|e| CallError::Failed(format!("the result did not serialize: {e}")))
    }

    /// No result (`()`).
    pub fn unit() -> Reply {
        Reply(Value::Nil)
    }
}

/// Why a method call failed, as the caller sees it ([`ManagerError::Remote`] with the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No such method (code `NotExposed`).
    NotExposed(String),
    /// The arguments did not decode (code `BadArguments`).
    BadArguments(String),
    /// The method failed (code `MethodFailed`).
    Failed(String),
}

impl CallError {
    /// `method` is not one of the type's.
    pub fn not_exposed(method: &str) -> CallError {
        CallError::NotExposed(format!("no method {method}"))
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotExposed(m) | CallError::BadArguments(m) | CallError::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for CallError {}

/// What the server runs for a call: the object's state, the method, the arguments.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MethodCall {
    pub(crate) state: Value,
    pub(crate) method: String,
    pub(crate) args: Value,
}

/// The new state and the reply, or an error code and message.
pub(crate) type MethodOutcome = Result<(Value, Value), (String, String)>;

/// The methods of a user type given at run time ([`ManagerBuilder::register_handler`]): called
/// with the method's name, the object's state (which it may change) and the arguments.
///
/// [`ManagerBuilder::register_handler`]: crate::ManagerBuilder::register_handler
pub(crate) type Handler =
    std::sync::Arc<dyn Fn(&str, &mut Value, Value) -> Result<Value, CallError> + Send + Sync>;

/// What a program that hosts a user type's objects runs when the manager frees one
/// ([`ManagerBuilder::on_free`]): called with its last state.
///
/// [`ManagerBuilder::on_free`]: crate::ManagerBuilder::on_free
pub(crate) type FreeHook = std::sync::Arc<dyn Fn(Value) + Send + Sync>;

/// Runs `handler` for `call`, as a compiled type's dispatch runs: a panic is `Panicked`, the
/// object unchanged.
pub(crate) fn run_handler(handler: &Handler, call: MethodCall) -> MethodOutcome {
    let MethodCall {
        mut state,
        method,
        args,
    } = call;
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&method, &mut state, args))).map_err(
        |payload| {
            (
                "Panicked".to_owned(),
                crate::process::panic_message(payload.as_ref()),
            )
        },
    )?;
    outcome.map(|reply| (state, reply)).map_err(code_of)
}

/// A method's error as the protocol's code and message.
fn code_of(error: CallError) -> (String, String) {
    match error {
        CallError::NotExposed(m) => ("NotExposed".to_owned(), m),
        CallError::BadArguments(m) => ("BadArguments".to_owned(), m),
        CallError::Failed(m) => ("MethodFailed".to_owned(), m),
    }
}

/// A registered type's dispatch, as an entry point of this executable.
pub(crate) type TypeEntry = EntryPoint<MethodCall, MethodOutcome>;

/// What runs a method of one type on a state: `dispatch::<T>`.
pub(crate) type Dispatch = fn(MethodCall) -> MethodOutcome;

/// The types whose methods this process runs itself (the Redis backend's calls), by name.
static KNOWN: std::sync::Mutex<Vec<(&'static str, Dispatch)>> = std::sync::Mutex::new(Vec::new());

/// Makes `T`'s methods runnable in this process by its name ([`dispatcher`]).
fn known<T: Shared>() {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|(name, _)| *name == T::TYPE_NAME) {
        known.push((T::TYPE_NAME, dispatch::<T>));
    }
}

/// What runs a method of the type called `name` in this process, if a proxy of it called one.
#[cfg(feature = "redis")]
pub(crate) fn dispatcher(name: &str) -> Option<Dispatch> {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    known.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The dispatch entry point of `T`.
pub(crate) fn entry_for<T: Shared>() -> TypeEntry {
    EntryPoint::new(dispatch::<T>, apply)
}

fn apply(f: fn(MethodCall) -> MethodOutcome, call: MethodCall) -> MethodOutcome {
    f(call)
}

fn dispatch<T: Shared>(call: MethodCall) -> MethodOutcome {
    let fail = |code: &str, message: String| (code.to_owned(), message);
    let mut object: T = value::from_value(call.state)
        .map_err(|e| fail("DecodeError", format!("the object's state: {e}")))?;
    let args = Args(call.args);
    let outcome = catch_unwind(AssertUnwindSafe(|| object.call(&call.method, args)))
        .map_err(|payload| fail("Panicked", crate::process::panic_message(payload.as_ref())))?;
    let Reply(reply) = outcome.map_err(code_of)?;
    let state = value::to_value(&object).map_err(|e| {
        fail(
            "MethodFailed",
            format!("the object's state did not serialize: {e}"),
        )
    })?;
    Ok((state, reply))
}

proxy! {
    /// A proxy to a user type `T` hosted by a manager ([`Manager::create`](crate::Manager::create)).
    pub struct ObjectProxy<T> = Kind::Object;
}

impl<T: Shared> ObjectProxy<T> {
    /// Calls `method` with `args` (a tuple for several, `()` for none) on the server and returns
    /// its result as an `R`. Atomic: no other call of this object runs in between (a call waits
    /// for the one before it, on a connection taken for it, so that the wait holds up no other
    /// proxy). On Redis the method runs in this process, on the state it reads, and its new state
    /// is written only if no other call wrote meanwhile, else it runs again on the new state: still
    /// atomic, but a method may run more than once (`docs/redis.md`).
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, ManagerError> {
        known::<T>();
        from_value(
            self.handle
                .call(Op::ObjectCall, vec![Value::from(method), to_value(args)?])?,
        )
    }

    /// A copy of the object's state now.
    pub fn get(&self) -> Result<T, ManagerError> {
        from_value(self.handle.call(Op::ObjectGet, Vec::new())?)
    }
}
