//! [`Token`]: the untyped face of an object on a manager, for clients that are not typed Rust
//! code (a binding to another language, a tool): operations by their protocol name, arguments
//! and answers as MessagePack values. The typed proxies are the same handle with types on top.

use std::fmt;

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::handle::Handle;
use super::protocol::{Kind, Op};
use super::proxy::to_value;
use super::{ErrorCode, Manager, ManagerError};

/// An object on a manager, untyped: what a proxy is without its types. Python:
/// `multiprocessing.managers.Token` with the calls of `BaseProxy._callmethod`.
///
/// Operations are those of `docs/manager-protocol.md`, by name; arguments and answers are
/// MessagePack values ([`rmpv::Value`], re-exported as [`multiproc::rmpv`](crate::rmpv)). A
/// token holds its object as a proxy does (clones share the hold), travels to other processes
/// as a proxy does, and is stored as a reference in a value of its own manager
/// ([`reference`](Self::reference)). Each token is an owner of its own: a lock it acquires with
/// `call("lock.acquire", ..)` is released by a later `call("lock.release", ..)` on the same
/// token, and if the token is dropped holding it, the manager releases it and tells the next
/// taker, as for a [`LockProxyGuard`](crate::LockProxyGuard) forgotten.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Manager, rmpv::Value};
///
/// let manager = Manager::start()?;
/// let scores = manager.create_token("dict", Vec::new())?;
/// scores.call("dict.set", vec!["ann".into(), 3.into()])?;
/// assert_eq!(scores.call("dict.getitem", vec!["ann".into()])?, Value::from(3));
///
/// let lock = manager.create_token("lock", Vec::new())?;
/// assert_eq!(lock.call("lock.acquire", vec![Value::Nil])?, Value::from("acquired"));
/// lock.call("lock.release", Vec::new())?; // a separate call, as Python's release()
///
/// // A token is a value too: stored, and read back as a token of the same object.
/// let teams = manager.create_token("list", vec![Value::Array(vec![])])?;
/// teams.call("list.append", vec![scores.reference()?])?;
/// let stored = teams.call("list.get", vec![0.into()])?;
/// let again = teams.token_in(&stored)?;
/// assert_eq!(again.id(), scores.id());
/// # Ok(())
/// # }
/// ```
pub struct Token {
    handle: Handle,
}

impl Token {
    /// The object's id on its manager.
    pub fn id(&self) -> u64 {
        self.handle.object
    }

    /// The address of the object's manager.
    pub fn address(&self) -> &crate::Address {
        self.handle.address()
    }

    /// The token as bytes for another process *without the manager's key*, as CPython pickles
    /// a proxy outside of spawning a child: whoever reads them gives the key
    /// ([`from_keyless`](Self::from_keyless)), so the bytes may go where the key must not (a
    /// queue, a file, another machine). Takes a loan, as a token serialized whole does (see
    /// `docs/manager-protocol.md`, "Lifetime").
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{Manager, Token};
    ///
    /// let manager = Manager::builder().authkey(b"the key").start()?;
    /// let scores = manager.create_token("dict", Vec::new())?;
    /// let bytes = scores.to_keyless()?;
    /// assert_eq!(&Token::keyless_address(&bytes)?, scores.address());
    /// let again = Token::from_keyless(&bytes, b"the key")?;
    /// assert_eq!(again.id(), scores.id());
    /// assert!(Token::from_keyless(&bytes, b"another key").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_keyless(&self) -> Result<Vec<u8>, ManagerError> {
        self.handle.keyless()
    }

    /// The token [`to_keyless`](Self::to_keyless) made, in this process: it connects to the
    /// manager with `authkey` (a wrong one is [`ManagerError::Connect`]) and claims the loan.
    pub fn from_keyless(bytes: &[u8], authkey: &[u8]) -> Result<Token, ManagerError> {
        Handle::from_keyless(bytes, authkey).map(|handle| Token { handle })
    }

    /// The manager's address in [`to_keyless`](Self::to_keyless)'s bytes: where to find the
    /// key.
    pub fn keyless_address(bytes: &[u8]) -> Result<crate::Address, ManagerError> {
        super::handle::keyless_address(bytes)
    }

    /// A token of the same object for this process: a clone, or, for a token inherited through
    /// `fork` (whose calls are refused: [`ManagerError::InheritedThroughFork`]), a new one on this
    /// process's own connection, holding the object anew (while the parent's proxy still holds
    /// it). What a binding calls in a forked child before using what it inherited.
    pub fn in_this_process(&self) -> Result<Token, ManagerError> {
        Ok(Token {
            handle: self.handle.in_this_process()?,
        })
    }

    /// The object's kind, as its creation names it (`"dict"`, `"list"`, `"lock"`, ...): one
    /// round trip, for a token read from a reference, whose kind travels not.
    pub fn kind(&self) -> Result<String, ManagerError> {
        let args = vec![Value::from(self.handle.object)];
        let kind = self.handle.session.call(Op::KindOf, 0, args, 0)?;
        kind.as_str()
            .map(str::to_owned)
            .ok_or_else(|| ManagerError::Protocol(format!("expected a kind, got {kind}")))
    }

    /// Runs the operation `op` (its protocol name, as `"dict.set"`) on the object with `args`,
    /// and returns the answer. Operations that may wait (`lock.acquire`, `queue.get`, ...) take
    /// a connection of their own for their duration, as the proxies' do. A name this client does
    /// not know is [`ErrorCode::NotExposed`], sent nowhere.
    pub fn call(&self, op: &str, args: Vec<Value>) -> Result<Value, ManagerError> {
        self.call_with(op, args, None)
    }

    /// [`call`](Self::call), for a program that must be able to give up a wait (a binding whose
    /// language has Ctrl-C): while an operation waits, `interrupted` is asked every 25 ms, and
    /// when it returns true the wait ends with [`ManagerError::Interrupted`] having taken
    /// nothing (within the server's check of its waiters, a tenth of a second). If the server
    /// took what was waited for before it saw the wait given up, the call ends as it would
    /// have, with the answer: nothing is lost either way.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use std::time::{Duration, Instant};
    ///
    /// use multiproc::{Manager, ManagerError};
    ///
    /// let manager = Manager::start()?;
    /// let queue = manager.create_token("queue", vec![])?;
    /// let give_up = Instant::now() + Duration::from_millis(300);
    /// let waited = queue.call_interruptible("queue.get", vec![], &|| Instant::now() > give_up);
    /// assert!(matches!(waited, Err(ManagerError::Interrupted)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_interruptible(
        &self,
        op: &str,
        args: Vec<Value>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Value, ManagerError> {
        self.call_with(op, args, Some(interrupted))
    }

    /// [`call`](Self::call), its waits interrupted by `interrupted` if there is one.
    fn call_with(
        &self,
        op: &str,
        args: Vec<Value>,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Value, ManagerError> {
        let op =
            Op::parse(op)
                .filter(|op| !op.on_manager())
                .ok_or_else(|| ManagerError::Remote {
                    code: ErrorCode::NotExposed,
                    message: format!("this client knows no operation {op} on an object"),
                })?;
        // On the connection a proxy of the object's kind would use: every operation of a kind
        // that waits on one of the pool, so that a lock's release follows its acquire on the same
        // connection (and server thread), as a `LockProxy`'s does.
        let waits = op.may_wait() || op.targets().iter().any(|kind| kind.waits());
        let answer = self
            .handle
            .call_interruptible(op, args, waits, interrupted)?;
        // What this owner holds, for the release its drop owes (as a lock proxy counts).
        match op {
            Op::LockAcquire if answer.as_str() != Some("timeout") => self.handle.count_held(true),
            Op::LockRelease => self.handle.count_held(false),
            _ => {}
        }
        Ok(answer)
    }

    /// The object as a value, to store in a dict, a list, a namespace, a value or a queue of
    /// the same manager: a reference, which reads back as a token ([`token_in`](Self::token_in))
    /// or as a proxy of the object's kind.
    pub fn reference(&self) -> Result<Value, ManagerError> {
        to_value(self)
    }

    /// The token of the reference `value`, from an answer that this thread got last (the hold
    /// the answer brought becomes the token's). Anything else is [`ManagerError::Value`].
    pub fn token_in(&self, value: &Value) -> Result<Token, ManagerError> {
        super::proxy::from_value(value.clone())
    }
}

impl Manager {
    /// A new object of `kind` (its protocol name: `"dict"`, `"list"`, `"lock"`, ...) made from
    /// `args`, as an untyped [`Token`].
    pub fn create_token(&self, kind: &str, args: Vec<Value>) -> Result<Token, ManagerError> {
        let handle = self.make_handle(parse_kind(kind)?, None, args)?;
        Ok(Token { handle })
    }

    /// The object named `name`, created as `kind` from `args` by the first caller, as a
    /// [`Token`].
    pub fn named_token(
        &self,
        name: &str,
        kind: &str,
        args: Vec<Value>,
    ) -> Result<Token, ManagerError> {
        let handle = self.make_handle(parse_kind(kind)?, Some(name), args)?;
        Ok(Token { handle })
    }

    /// Runs an operation of the manager itself (object 0: `"ping"`, `"stats"`, `"remove_named"`,
    /// `"shutdown"`), untyped.
    /// The operations that give object ids are [`create_token`](Self::create_token) and
    /// [`named_token`](Self::named_token), which hold what they give.
    pub fn call(&self, op: &str, args: Vec<Value>) -> Result<Value, ManagerError> {
        match Op::parse(op) {
            Some(op @ (Op::Ping | Op::Stats | Op::RemoveNamed | Op::Shutdown)) => {
                self.session.call(op, 0, args, 0)
            }
            _ => Err(ManagerError::Remote {
                code: ErrorCode::NotExposed,
                message: format!(
                    "{op} is not an operation a client runs on the manager untyped (ping, stats, \
                     remove_named, shutdown; objects come from create_token and named_token)"
                ),
            }),
        }
    }
}

fn parse_kind(kind: &str) -> Result<Kind, ManagerError> {
    Kind::parse(kind).ok_or_else(|| ManagerError::Remote {
        code: ErrorCode::BadArguments,
        message: format!("no kind of object {kind}"),
    })
}

impl Clone for Token {
    /// Another token of the same object, sharing its hold, and another owner (as a clone of a
    /// lock proxy).
    fn clone(&self) -> Self {
        Token {
            handle: self.handle.duplicate(),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("Token", f)
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.handle.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Handle::deserialize(deserializer).map(|handle| Token { handle })
    }
}
