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

/// A connection to a manager: the untyped client of the `multiproc` crate.
#[pyclass(module = "multiproc._native", frozen)]
struct Connection {
    manager: Manager,
}

#[pymethods]
impl Connection {
    /// Connects to the manager at `address` (a Unix socket path, or `host:port`) with `authkey`.
    #[new]
    fn new(py: Python<'_>, address: String, authkey: Vec<u8>) -> PyResult<Connection> {
        let manager = py
            .detach(|| Manager::connect(address.as_str(), &authkey))
            .map_err(raise)?;
        Ok(Connection { manager })
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
        let args = values::args(args)?;
        let token = py
            .detach(|| match &name {
                None => self.manager.create_token(&kind, args),
                Some(name) => self.manager.named_token(name, &kind, args),
            })
            .map_err(raise)?;
        Ok(Token {
            token,
            kind: Some(kind),
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
        let args = values::args(args)?;
        let answer: Value = py.detach(|| self.token.call(&op, args)).map_err(raise)?;
        values::to_python(py, answer, &|value| {
            let token = self.token.token_in(value)?;
            Ok(Token { token, kind: None })
        })
    }

    /// Another token of the same object, sharing the hold, and another owner (what one takes, a
    /// lock, the other does not hold).
    fn another_owner(&self) -> Token {
        Token {
            token: self.token.clone(),
            kind: self.kind.clone(),
        }
    }

    /// A token of the same object for this process (after a fork: on its own connection).
    fn in_this_process(&self, py: Python<'_>) -> PyResult<Token> {
        let token = py.detach(|| self.token.in_this_process()).map_err(raise)?;
        Ok(Token {
            token,
            kind: self.kind.clone(),
        })
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
fn token_from_bytes(py: Python<'_>, bytes: Vec<u8>, kind: Option<String>) -> PyResult<Token> {
    let token: multiproc::Token = py
        .detach(|| postcard::from_bytes(&bytes))
        .map_err(|e| Refused::new_err(("UnknownObject", e.to_string())))?;
    Ok(Token { token, kind })
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
    module.add("Refused", module.py().get_type::<Refused>())?;
    module.add("ManagerGone", module.py().get_type::<ManagerGone>())?;
    Ok(())
}
