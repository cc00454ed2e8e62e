//! User types whose code is Python (`BaseManager.register`), hosted by the server of this
//! process: each method call runs the Python dispatcher with the GIL taken, outside the manager's
//! locks, one call at a time per object (the server's rule).

use multiproc::CallError;
use multiproc::rmpv::Value;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::Token;
use super::values::{self, Codec};

/// Runs `method` of an object of `type_name` whose state is `state`, through `dispatch`.
pub(crate) fn call(
    py: Python<'_>,
    dispatch: &Py<PyAny>,
    type_name: &str,
    method: &str,
    state: &mut Value,
    args: Value,
) -> Result<Value, CallError> {
    let failed = |e: PyErr| CallError::Failed(format!("the manager's dispatcher failed: {e}"));
    // The server never unpickles: an opaque argument reaches the method as `Pickled` bytes.
    let py_state =
        values::to_python(py, state.clone(), Codec::Native, &no_token).map_err(failed)?;
    let py_args = values::to_python(py, args, Codec::Native, &no_token)
        .map_err(|e| CallError::BadArguments(e.to_string()))?;
    let answer = dispatch
        .call1(py, (type_name, method, py_state, py_args))
        .map_err(failed)?;
    let answer = answer
        .bind(py)
        .cast::<PyTuple>()
        .map_err(|e| failed(e.into()))?;
    let (outcome, new_state, reply): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) =
        answer.extract().map_err(failed)?;
    match outcome.as_str() {
        "ok" => {
            let reply = values::to_value(&reply, 0, Codec::Native).map_err(|e| {
                CallError::Failed(format!("TypeError: the result of {method}: {e}"))
            })?;
            *state = values::to_value(&new_state, 0, Codec::Native).map_err(failed)?;
            Ok(reply)
        }
        "not_exposed" => Err(CallError::NotExposed(reply.to_string())),
        _ => Err(CallError::Failed(reply.to_string())),
    }
}

/// Lets `free` know the manager freed an object of `type_name` whose state was `state`.
pub(crate) fn free(py: Python<'_>, free: &Py<PyAny>, type_name: &str, state: Value) {
    if let Ok(state) = values::to_python(py, state, Codec::Native, &no_token) {
        // Nobody to tell if it fails: the object is gone either way.
        let _ = free.call1(py, (type_name, state));
    }
}

/// The server side has no client of its own manager to make proxies with: a proxy in a
/// registered method's arguments or in an object's state is refused.
fn no_token(_: &Value) -> Result<Token, multiproc::ManagerError> {
    Err(multiproc::ManagerError::Value(
        "a proxy as the argument of a registered type's method".into(),
    ))
}
