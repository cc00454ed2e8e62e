//! The crate's errors as Python exceptions: a refusal carries the protocol's code, which the
//! Python half maps to the exception CPython raises (`KeyError`, `IndexError`, `queue.Empty`, ...).

use multiproc::ManagerError;
use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::{PyConnectionError, PyException};

create_exception!(
    _native,
    Refused,
    PyException,
    "The manager refused an operation: args are (code, message), the code as the protocol names it."
);
create_exception!(
    _native,
    ManagerGone,
    PyConnectionError,
    "The manager is gone: its process ended, or the connection broke."
);

/// `error` as the exception the Python half expects.
pub(crate) fn raise(error: ManagerError) -> PyErr {
    let refused = |code: &str, message: String| Refused::new_err((code.to_owned(), message));
    match error {
        ManagerError::Remote { code, message } => refused(code.as_str(), message),
        ManagerError::Gone { .. } => ManagerGone::new_err(error.to_string()),
        ManagerError::Timeout => refused("Timeout", error.to_string()),
        ManagerError::Full => refused("Full", error.to_string()),
        ManagerError::Empty => refused("Empty", error.to_string()),
        ManagerError::Connect(_) => refused("AuthenticationError", error.to_string()),
        ManagerError::FrameTooLarge { .. } => refused("FrameTooLarge", error.to_string()),
        ManagerError::Value(_) => refused("TypeError", error.to_string()),
        other => refused("Error", other.to_string()),
    }
}
