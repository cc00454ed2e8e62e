//! Python values as the protocol's MessagePack values and back: `None`, `bool`, `int` (64
//! bits), `float`, `str`, `bytes`, `list`, `tuple`, `dict`, and proxies (references). Anything
//! else is a `TypeError` that names the type, unless the manager's codec is `"pickle"`: then it
//! is pickled here, by the client, into an opaque value (MessagePack extension type 3) that the
//! server stores byte for byte and never reads, and unpickled by the clients that read it with
//! the same codec (others get a `multiproc.Pickled` holding the bytes).

use multiproc::rmpv::Value;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};

use super::Token;

/// Values nested deeper than this are refused before sending (the server's limit is 64 levels
/// for a whole request).
const MAX_DEPTH: usize = 60;

/// The MessagePack extension type of a client's opaque value (the protocol's type 3).
const OPAQUE: i8 = 3;

/// How values that MessagePack cannot say are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// They are refused: `TypeError`.
    Native,
    /// They are pickled by the client (`Manager(codec="pickle")`).
    Pickle,
}

impl Codec {
    /// The codec called `name` (`None`: the native one).
    pub(crate) fn parse(name: Option<&str>) -> PyResult<Codec> {
        match name {
            None => Ok(Codec::Native),
            Some("pickle") => Ok(Codec::Pickle),
            Some(other) => Err(PyValueError::new_err(format!(
                "no codec {other:?}: a manager's codec is None or \"pickle\""
            ))),
        }
    }

    /// Its name, as `parse` takes it.
    pub(crate) fn name(self) -> Option<&'static str> {
        match self {
            Codec::Native => None,
            Codec::Pickle => Some("pickle"),
        }
    }
}

/// The arguments of an operation.
pub(crate) fn args(list: &Bound<'_, PyList>, codec: Codec) -> PyResult<Vec<Value>> {
    list.iter().map(|item| to_value(&item, 0, codec)).collect()
}

/// `object` as a protocol value.
pub(crate) fn to_value(object: &Bound<'_, PyAny>, depth: usize, codec: Codec) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "a manager value nests {MAX_DEPTH} levels deep at most"
        )));
    }
    if object.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = object.cast::<PyBool>() {
        return Ok(Value::Boolean(b.is_true()));
    }
    if object.is_instance_of::<PyInt>() {
        if let Ok(n) = object.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = object.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(PyOverflowError::new_err(
            "a manager value's int is 64 bits at most (signed, or unsigned up to 2**64 - 1)",
        ));
    }
    if object.is_instance_of::<PyFloat>() {
        return Ok(Value::F64(object.extract::<f64>()?));
    }
    if let Ok(s) = object.cast::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if let Ok(b) = object.cast::<PyBytes>() {
        return Ok(Value::Binary(b.as_bytes().to_vec()));
    }
    if let Ok(b) = object.cast::<PyByteArray>() {
        return Ok(Value::Binary(b.to_vec()));
    }
    if let Ok(list) = object.cast::<PyList>() {
        return list
            .iter()
            .map(|item| to_value(&item, depth + 1, codec))
            .collect();
    }
    if let Ok(tuple) = object.cast::<PyTuple>() {
        return tuple
            .iter()
            .map(|item| to_value(&item, depth + 1, codec))
            .collect();
    }
    if let Ok(dict) = object.cast::<PyDict>() {
        let entries = dict
            .iter()
            .map(|(k, v)| {
                Ok((
                    to_value(&k, depth + 1, codec)?,
                    to_value(&v, depth + 1, codec)?,
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Value::Map(entries));
    }
    if let Ok(token) = object.cast::<Token>() {
        return token.get().token.reference().map_err(super::errors::raise);
    }
    if let Ok(token) = object.getattr("_token")
        && let Ok(token) = token.cast::<Token>()
    {
        return token.get().token.reference().map_err(super::errors::raise);
    }
    let py = object.py();
    let pickled = py.import("multiproc.managers")?.getattr("Pickled")?;
    if object.is_instance(&pickled)? {
        // An opaque value read without the codec goes back as it came.
        let data = object.getattr("data")?;
        return Ok(Value::Ext(
            OPAQUE,
            data.cast::<PyBytes>()?.as_bytes().to_vec(),
        ));
    }
    if codec == Codec::Pickle {
        let data = py.import("pickle")?.call_method1("dumps", (object,))?;
        return Ok(Value::Ext(
            OPAQUE,
            data.cast::<PyBytes>()?.as_bytes().to_vec(),
        ));
    }
    let name = object.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "a manager value must be None, bool, int, float, str, bytes, list, tuple, dict or a \
         proxy, not {name} (Manager(codec=\"pickle\") stores other objects as pickles, which \
         only clients read)"
    )))
}

/// `value` as a Python value; a reference becomes the token `token_of` makes.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    value: Value,
    codec: Codec,
    token_of: &dyn Fn(&Value) -> Result<Token, multiproc::ManagerError>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Nil => py.None().into_bound(py),
        Value::Boolean(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Integer(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => return Err(PyOverflowError::new_err("an integer beyond 64 bits")),
        },
        Value::F32(x) => f64::from(x).into_pyobject(py)?.into_any(),
        Value::F64(x) => x.into_pyobject(py)?.into_any(),
        Value::String(s) => match s.into_str() {
            Some(s) => PyString::new(py, &s).into_any(),
            None => return Err(PyValueError::new_err("a string that is not UTF-8")),
        },
        Value::Binary(b) => PyBytes::new(py, &b).into_any(),
        Value::Array(items) => {
            let items = items
                .into_iter()
                .map(|item| to_python(py, item, codec, token_of))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                let key = to_python(py, k, codec, token_of)?;
                // A list can never be a key: it comes back as a tuple.
                let key = match key.cast::<PyList>() {
                    Ok(list) => PyTuple::new(py, list.iter())?.into_any(),
                    Err(_) => key,
                };
                dict.set_item(key, to_python(py, v, codec, token_of)?)?;
            }
            dict.into_any()
        }
        Value::Ext(OPAQUE, data) => {
            let data = PyBytes::new(py, &data);
            match codec {
                Codec::Pickle => py.import("pickle")?.call_method1("loads", (data,))?,
                Codec::Native => py
                    .import("multiproc.managers")?
                    .getattr("Pickled")?
                    .call1((data,))?,
            }
        }
        ext @ Value::Ext(..) => {
            let token = token_of(&ext).map_err(super::errors::raise)?;
            // A reference reads back as a live proxy of its object's kind.
            let token = Bound::new(py, token)?;
            py.import("multiproc.managers")?
                .getattr("_proxy_for")?
                .call1((token,))?
        }
    })
}
