//! `multiproc._native`: the Rust half of the Python package. It converts values, releases the
//! GIL around every round trip and maps errors; the manager itself is the `multiproc` crate's
//! (a [`Token`](multiproc::Token) per object, the server of `ManagerBuilder`). The Python half
//! (`python/multiproc`) gives it `multiprocessing.Manager`'s shape.

mod errors;
mod hosted;
mod values;

use multiproc::rmpv::Value;
use multiproc::{Manager, ManagerStats};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use errors::{ManagerGone, Refused, raise};
use values::Codec;

/// A connection to a manager: the untyped client of the `multiproc` crate.
#[pyclass(module = "multiproc._native", frozen)]
struct Connection {
    manager: Manager,
    codec: Codec,
}

#[pymethods]
impl Connection {
    /// Connects to the manager at `address` (a Unix socket path, or `host:port`) with `authkey`;
    /// `codec="pickle"` stores what MessagePack cannot say as pickles (`values`).
    #[new]
    #[pyo3(signature = (address, authkey, codec=None))]
    fn new(
        py: Python<'_>,
        address: String,
        authkey: Vec<u8>,
        codec: Option<&str>,
    ) -> PyResult<Connection> {
        let codec = Codec::parse(codec)?;
        let manager = py
            .detach(|| Manager::connect(address.as_str(), &authkey))
            .map_err(raise)?;
        Ok(Connection { manager, codec })
    }

    /// A new object of `kind` made from `args` (a list of values), or the one called `name`.
    #[pyo3(signature = (kind, args, name=None))]
    fn create(
        &self,
        py: Python<'_>,
        kind: String,
        args: &Bound<'_, PyList>,
        name: Option<String>,
    ) -> PyResult<Token> {
        let args = values::args(args, self.codec)?;
        let token = py
            .detach(|| match &name {
                None => self.manager.create_token(&kind, args),
                Some(name) => self.manager.named_token(name, &kind, args),
            })
            .map_err(raise)?;
        Ok(Token {
            token,
            kind: Some(kind),
            codec: self.codec,
        })
    }

    /// The number of objects the manager holds.
    fn objects(&self, py: Python<'_>) -> PyResult<u64> {
        let stats: ManagerStats = py.detach(|| self.manager.stats()).map_err(raise)?;
        Ok(stats.objects)
    }

    /// Removes the name `name`; whether there was one.
    fn remove_named(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        py.detach(|| self.manager.remove_named(&name))
            .map_err(raise)
    }

    /// Asks the server to stop.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        match py.detach(|| self.manager.call("shutdown", Vec::new())) {
            Ok(_) | Err(multiproc::ManagerError::Gone { .. }) => Ok(()),
            Err(e) => Err(raise(e)),
        }
    }
}

/// An object on a manager, untyped: operations by name on values.
#[pyclass(module = "multiproc._native", frozen)]
struct Token {
    token: multiproc::Token,
    /// Its kind, when known without asking (it was created here).
    kind: Option<String>,
    /// How values MessagePack cannot say are stored: its manager's.
    codec: Codec,
}

#[pymethods]
impl Token {
    /// Runs operation `op` with `args` (a list of values) and returns the answer as Python
    /// values; references in it come back as tokens.
    fn call<'py>(
        &self,
        py: Python<'py>,
        op: String,
        args: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = values::args(args, self.codec)?;
        // A wait gives way to Ctrl-C (any signal whose handler raises): the exception is kept
        // and raised when the wait has ended, having taken nothing.
        let raised: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
        let interrupted = || {
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(error) => {
                    *raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                    true
                }
            })
        };
        let answer = py.detach(|| self.token.call_interruptible(&op, args, &interrupted));
        let raised = raised.into_inner().unwrap_or_else(|e| e.into_inner());
        let answer: Value = match (answer, raised) {
            (Err(multiproc::ManagerError::Interrupted), Some(error)) => return Err(error),
            (answer, Some(error)) => {
                // The server took it before it saw the wait given up: the call is done, and
                // its answer returned; the interruption comes right after.
                if error.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    // Ctrl-C again, as if it came now: Python raises it at its next step.
                    py.import("_thread")?.call_method0("interrupt_main")?;
                } else {
                    return Err(error);
                }
                answer.map_err(raise)?
            }
            (answer, None) => answer.map_err(raise)?,
        };
        values::to_python(py, answer, self.codec, &|value| {
            let token = self.token.token_in(value)?;
            Ok(Token {
                token,
                kind: None,
                codec: self.codec,
            })
        })
    }

    /// Another token of the same object, sharing the hold, and another owner (what one takes, a
    /// lock, the other does not hold).
    fn another_owner(&self) -> Token {
        Token {
            token: self.token.clone(),
            kind: self.kind.clone(),
            codec: self.codec,
        }
    }

    /// A token of the same object for this process (after a fork: on its own connection).
    fn in_this_process(&self, py: Python<'_>) -> PyResult<Token> {
        let token = py.detach(|| self.token.in_this_process()).map_err(raise)?;
        Ok(Token {
            token,
            kind: self.kind.clone(),
            codec: self.codec,
        })
    }

    /// How values MessagePack cannot say are stored: `None`, or `"pickle"`.
    #[getter]
    fn codec(&self) -> Option<&'static str> {
        self.codec.name()
    }

    /// The address of the object's manager.
    #[getter]
    fn address(&self) -> String {
        self.token.address().to_string()
    }

    /// The token as bytes without the manager's key (as CPython pickles a proxy outside of
    /// spawning a child): the reader gives the key ([`token_from_keyless`]). Takes a loan.
    fn to_keyless<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py.detach(|| self.token.to_keyless()).map_err(raise)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The object's id.
    #[getter]
    fn id(&self) -> u64 {
        self.token.id()
    }

    /// The object's kind (`"dict"`, `"list"`, ...).
    fn kind(&self, py: Python<'_>) -> PyResult<String> {
        match &self.kind {
            Some(kind) => Ok(kind.clone()),
            None => py.detach(|| self.token.kind()).map_err(raise),
        }
    }

    /// The token as bytes, for pickling: it takes a loan that keeps the object alive until
    /// another process reads it ([`from_bytes`]).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py
            .detach(|| postcard::to_stdvec(&self.token))
            .map_err(|e| Refused::new_err(("Error", e.to_string())))?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// A token from [`Token::to_bytes`]'s bytes, in this process: it connects, and claims the loan.
#[pyfunction]
#[pyo3(signature = (bytes, kind, codec=None))]
fn token_from_bytes(
    py: Python<'_>,
    bytes: Vec<u8>,
    kind: Option<String>,
    codec: Option<&str>,
) -> PyResult<Token> {
    let codec = Codec::parse(codec)?;
    let token: multiproc::Token = py
        .detach(|| postcard::from_bytes(&bytes))
        .map_err(|e| Refused::new_err(("UnknownObject", e.to_string())))?;
    Ok(Token { token, kind, codec })
}

/// A token from [`Token::to_keyless`]'s bytes, in this process, authenticated with `authkey`.
#[pyfunction]
#[pyo3(signature = (bytes, kind, authkey, codec=None))]
fn token_from_keyless(
    py: Python<'_>,
    bytes: Vec<u8>,
    kind: Option<String>,
    authkey: Vec<u8>,
    codec: Option<&str>,
) -> PyResult<Token> {
    let codec = Codec::parse(codec)?;
    let token = py
        .detach(|| multiproc::Token::from_keyless(&bytes, &authkey))
        .map_err(raise)?;
    Ok(Token { token, kind, codec })
}

/// The manager's address in [`Token::to_keyless`]'s bytes.
#[pyfunction]
fn keyless_address(bytes: Vec<u8>) -> PyResult<String> {
    multiproc::Token::keyless_address(&bytes)
        .map(|address| address.to_string())
        .map_err(raise)
}

/// Serves a manager on the listening socket passed as descriptor 3 (socket activation), with
/// `authkey`, until a client asks it to stop. The GIL is released while it serves. (The server
/// process watches its starter itself: `_server.py`.)
///
/// The user types named in `types` are hosted by Python code of this process (registered with
/// `BaseManager.register`, never code from the wire): `dispatch(type, method, state, args)`
/// runs a method and returns `(outcome, new_state, reply)`, the outcome `"ok"`, `"not_exposed"`
/// or `"failed"` (the reply then says why); `free(type, state)` lets go of an object the manager
/// freed.
#[pyfunction]
#[pyo3(signature = (authkey, types=Vec::new(), dispatch=None, free=None))]
fn serve(
    py: Python<'_>,
    authkey: Vec<u8>,
    types: Vec<String>,
    dispatch: Option<Py<PyAny>>,
    free: Option<Py<PyAny>>,
) -> PyResult<()> {
    let mut builder = Manager::builder().authkey(&authkey).socket_activated();
    for type_name in types {
        if let Some(dispatch) = &dispatch {
            let dispatch = dispatch.clone_ref(py);
            let name = type_name.clone();
            builder = builder.register_handler(&type_name, move |method, state, args| {
                Python::attach(|py| hosted::call(py, &dispatch, &name, method, state, args))
            });
        }
        if let Some(free) = &free {
            let free = free.clone_ref(py);
            let name = type_name.clone();
            builder = builder.on_free(&type_name, move |state| {
                Python::attach(|py| hosted::free(py, &free, &name, state))
            });
        }
    }
    py.detach(|| builder.serve()).map_err(raise)
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Connection>()?;
    module.add_class::<Token>()?;
    module.add_function(wrap_pyfunction!(serve, module)?)?;
    module.add_function(wrap_pyfunction!(token_from_bytes, module)?)?;
    module.add_function(wrap_pyfunction!(token_from_keyless, module)?)?;
    module.add_function(wrap_pyfunction!(keyless_address, module)?)?;
    module.add("Refused", module.py().get_type::<Refused>())?;
    module.add("ManagerGone", module.py().get_type::<ManagerGone>())?;
    Ok(())
}
