//! The operations on data: dicts, namespaces, lists, arrays and single values. Each is a pure
//! function of the container and the arguments, and says what it changed: the reply, the values
//! it removed (nested containers among them are removed by the caller) and the change events that
//! watchers see.
//!
//! Change events are normalized, whatever operation made them:
//! - dict: `["set", key, value]`, `["del", key]`, `["clear"]`, `["nested", key, kind]`;
//! - list: `["append", item]`, `["set", index, item]`, `["insert", index, item]`,
//!   `["remove", index]`, `["clear"]`.

use rmpv::Value;

use super::super::ErrorCode;
use super::super::protocol::Op;
use super::super::protocol::wire::WireError;
use super::table::Dict;

/// What an operation did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) reply: Value,
    /// Values that left the container (replaced or removed).
    pub(crate) dropped: Vec<Value>,
    pub(crate) events: Vec<Value>,
}

impl Default for Outcome {
    fn default() -> Outcome {
        Outcome {
            reply: Value::Nil,
            dropped: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl Outcome {
    fn reply(reply: Value) -> Outcome {
        Outcome {
            reply,
            ..Outcome::default()
        }
    }

    fn event(mut self, parts: Vec<Value>) -> Outcome {
        self.events.push(Value::Array(parts));
        self
    }

    fn dropping(mut self, value: Option<Value>) -> Outcome {
        self.dropped.extend(value);
        self
    }
}

pub(crate) fn arg(args: &[Value], index: usize) -> Result<&Value, WireError> {
    args.get(index)
        .ok_or_else(|| WireError::new(ErrorCode::BadArguments, format!("argument {index} missing")))
}

pub(crate) fn bad(message: impl Into<String>) -> WireError {
    WireError::new(ErrorCode::BadArguments, message)
}

pub(crate) fn not_exposed(op: &str, on: &str) -> WireError {
    WireError::new(ErrorCode::NotExposed, format!("no operation {op} on {on}"))
}

pub(crate) fn key_of(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_into(&mut bytes, value);
    bytes
}

/// Writes `value`'s MessagePack encoding (its identity as a key) at the end of `out`.
fn encode_into(out: &mut Vec<u8>, value: &Value) {
    rmpv::encode::write_value(out, value).expect("writing to a Vec does not fail");
}

/// A present value as `[value]`, an absent one as nil (so a stored nil is told apart).
fn optional(value: Option<Value>) -> Value {
    value.map_or(Value::Nil, |v| Value::Array(vec![v]))
}

/// The values that `events` stored: those of sets, appends and inserts.
pub(crate) fn stored(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter_map(|event| match event.as_array()?.as_slice() {
            [tag, _, value] if matches!(tag.as_str(), Some("set" | "insert")) => Some(value),
            [tag, item] if tag.as_str() == Some("append") => Some(item),
            _ => None,
        })
        .collect()
}

fn set_event(key: Value, value: Value) -> Vec<Value> {
    vec!["set".into(), key, value]
}

pub(crate) fn dict_op(dict: &mut Dict, op: Op, args: &[Value]) -> Result<Outcome, WireError> {
    let missing = |key: &Value| WireError::new(ErrorCode::KeyMissing, format!("no key {key}"));
    Ok(match op {
        Op::DictLen => Outcome::reply(Value::from(dict.len())),
        Op::DictVersion => Outcome::reply(Value::from(dict.version())),
        Op::DictGet => Outcome::reply(optional(
            dict.get(&key_of(arg(args, 0)?)).map(|(_, v)| v.clone()),
        )),
        Op::DictGetItem => {
            let key = arg(args, 0)?;
            let (_, value) = dict.get(&key_of(key)).ok_or_else(|| missing(key))?;
            Outcome::reply(value.clone())
        }
        Op::DictContains => Outcome::reply(Value::from(dict.contains_key(&key_of(arg(args, 0)?)))),
        Op::DictSet => {
            let key = arg(args, 0)?.clone();
            let value = arg(args, 1)?.clone();
            let old = dict.insert(key_of(&key), (key.clone(), value.clone()));
            Outcome::default()
                .dropping(old.map(|(_, v)| v))
                .event(set_event(key, value))
        }
        Op::DictPop | Op::DictDel => {
            let key = arg(args, 0)?;
            match dict.remove(&key_of(key)) {
                Some((key, value)) => Outcome::reply(if op == Op::DictPop {
                    optional(Some(value.clone()))
                } else {
                    value.clone()
                })
                .dropping(Some(value))
                .event(vec!["del".into(), key]),
                None if op == Op::DictPop => Outcome::reply(Value::Nil),
                None => return Err(missing(key)),
            }
        }
        Op::DictPopItem => match dict.pop_last() {
            Some((key, value)) => Outcome::reply(Value::Array(vec![key.clone(), value.clone()]))
                .dropping(Some(value))
                .event(vec!["del".into(), key]),
            None => {
                return Err(WireError::new(
                    ErrorCode::KeyMissing,
                    "popitem: the dict is empty",
                ));
            }
        },
        Op::DictKeys => Outcome::reply(Value::Array(
            dict.values().map(|(k, _)| k.clone()).collect(),
        )),
        Op::DictValues => Outcome::reply(Value::Array(
            dict.values().map(|(_, v)| v.clone()).collect(),
        )),
        Op::DictItems => Outcome::reply(Value::Array(
            dict.values()
                .map(|(k, v)| Value::Array(vec![k.clone(), v.clone()]))
                .collect(),
        )),
        Op::DictClear => {
            let dropped = dict.drain().map(|(_, v)| v).collect();
            Outcome {
                reply: Value::Nil,
                dropped,
                events: vec![Value::Array(vec!["clear".into()])],
            }
        }
        Op::DictSetDefault => {
            let key = arg(args, 0)?.clone();
            let default = arg(args, 1)?.clone();
            match dict.get(&key_of(&key)) {
                Some((_, value)) => Outcome::reply(value.clone()),
                None => {
                    dict.insert(key_of(&key), (key.clone(), default.clone()));
                    Outcome::reply(default.clone()).event(set_event(key, default))
                }
            }
        }
        Op::DictIncr => {
            let key = arg(args, 0)?.clone();
            let delta = arg(args, 1)?;
            // Summed first: a delta that does not add leaves the dict as it was.
            let encoded = key_of(&key);
            let sum = match dict.get(&encoded) {
                Some((_, current)) => add(current, delta)?,
                None => add(&Value::from(0), delta)?,
            };
            dict.insert(encoded, (key.clone(), sum.clone()));
            Outcome::reply(sum.clone()).event(set_event(key, sum))
        }
        Op::DictCompareAndSwap => {
            let key = arg(args, 0)?.clone();
            let expected = arg(args, 1)?;
            let new = arg(args, 2)?.clone();
            let matches = match dict.get(&key_of(&key)) {
                None => expected.is_nil(),
                Some((_, current)) => current == expected,
            };
            if !matches {
                return Ok(Outcome::reply(Value::from(false)));
            }
            let old = dict.insert(key_of(&key), (key.clone(), new.clone()));
            Outcome::reply(Value::from(true))
                .dropping(old.map(|(_, v)| v))
                .event(set_event(key, new))
        }
        Op::DictUpdate => {
            let Value::Array(pairs) = arg(args, 0)? else {
                return Err(bad("update takes [[key, value], ...]"));
            };
            // Check every pair before changing anything: all or nothing.
            let pairs = pairs
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([key, value]) => Ok((key, value)),
                    _ => Err(bad("a pair is [key, value]")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut outcome = Outcome::default();
            for (key, value) in pairs {
                let old = dict.insert(key_of(key), (key.clone(), value.clone()));
                outcome = outcome
                    .dropping(old.map(|(_, v)| v))
                    .event(set_event(key.clone(), value.clone()));
            }
            outcome
        }
        Op::DictGetMany => {
            let Value::Array(keys) = arg(args, 0)? else {
                return Err(bad("get_many takes [key, ...]"));
            };
            Outcome::reply(Value::Array(
                keys.iter()
                    .map(|key| optional(dict.get(&key_of(key)).map(|(_, v)| v.clone())))
                    .collect(),
            ))
        }
        _ => return Err(not_exposed(op.name(), "a dict")),
    })
}

/// The namespace's operations: the dict's, by attribute name.
pub(crate) fn namespace_op(dict: &mut Dict, op: Op, args: &[Value]) -> Result<Outcome, WireError> {
    match op {
        Op::DictKeys | Op::DictItems => dict_op(dict, op, args),
        Op::DictSet | Op::DictGetItem | Op::DictDel | Op::DictContains => match arg(args, 0)? {
            Value::String(_) => dict_op(dict, op, args),
            _ => Err(bad("a namespace's attribute names are strings")),
        },
        _ => Err(not_exposed(op.name(), "a namespace")),
    }
}

/// Items a list may hold, at most, after a `repeat` (each costs the server tens of bytes).
pub(crate) const MAX_ITEMS: usize = 1 << 24;

/// An index as Python takes it: an integer, negative from the end.
fn signed(value: &Value) -> Result<i128, WireError> {
    match (value.as_i64(), value.as_u64()) {
        (Some(i), _) => Ok(i128::from(i)),
        (None, Some(u)) => Ok(i128::from(u)),
        _ => Err(bad("an index is an integer")),
    }
}

/// Argument `index` as an index of an item of a list of `len`: negative counts from the end,
/// as in Python; outside the list is `IndexOutOfRange`.
fn index_arg(args: &[Value], index: usize, len: usize) -> Result<usize, WireError> {
    let given = signed(arg(args, index)?)?;
    let i = if given < 0 {
        given + len as i128
    } else {
        given
    };
    usize::try_from(i).ok().filter(|&i| i < len).ok_or_else(|| {
        WireError::new(
            ErrorCode::IndexOutOfRange,
            format!("index {given} out of range for length {len}"),
        )
    })
}

/// An index or bound that may be outside the list: negative counts from the end, and what is
/// past either end is clamped to it, as Python's slices and `insert` do.
fn bound_arg(args: &[Value], index: usize, len: usize) -> Result<usize, WireError> {
    let given = signed(arg(args, index)?)?;
    let i = if given < 0 {
        given + len as i128
    } else {
        given
    };
    Ok(i.clamp(0, len as i128) as usize)
}

/// The indices of the slice `[start:stop:step]` of a list of `len`, in the slice's order, as
/// Python computes them (each bound nil or an integer, negative from the end; a step of 0 is
/// refused).
fn slice_indices(args: &[Value], len: usize) -> Result<Vec<usize>, WireError> {
    let part = |i: usize| -> Result<Option<i128>, WireError> {
        match args.get(i) {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => signed(v).map(Some),
        }
    };
    let len = len as i128;
    let step = part(2)?.unwrap_or(1);
    if step == 0 {
        return Err(bad("a slice's step is not 0"));
    }
    let adjust = |bound: i128, low: i128, high: i128| {
        let bound = if bound < 0 { bound + len } else { bound };
        bound.clamp(low, high)
    };
    let (start, stop) = if step > 0 {
        (
            part(0)?.map_or(0, |b| adjust(b, 0, len)),
            part(1)?.map_or(len, |b| adjust(b, 0, len)),
        )
    } else {
        (
            part(0)?.map_or(len - 1, |b| adjust(b, -1, len - 1)),
            part(1)?.map_or(-1, |b| adjust(b, -1, len - 1)),
        )
    };
    let mut indices = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        indices.push(i as usize);
        i += step;
    }
    Ok(indices)
}

/// Whether a slice's arguments make it a plain one (a step of 1, or none).
fn contiguous(args: &[Value]) -> bool {
    matches!(args.get(2), None | Some(Value::Nil)) || args.get(2).and_then(Value::as_i64) == Some(1)
}

/// The order of two values, for `list.sort`: numbers (integers, floats and booleans, as Python
/// compares them) among themselves, strings by code point, bytes by byte, arrays item by item;
/// any other pair is `TypeError`, as Python's `<` between a str and an int is.
fn natural(a: &Value, b: &Value) -> Result<std::cmp::Ordering, WireError> {
    use std::cmp::Ordering;
    let number = |v: &Value| match v {
        Value::Boolean(b) => Some((Some(i128::from(*b)), f64::from(u8::from(*b)))),
        Value::Integer(n) => {
            let exact = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
            Some((exact, n.as_f64()?))
        }
        Value::F32(x) => Some((None, f64::from(*x))),
        Value::F64(x) => Some((None, *x)),
        _ => None,
    };
    if let (Some((x, fx)), Some((y, fy))) = (number(a), number(b)) {
        return Ok(match (x, y) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => fx.total_cmp(&fy),
        });
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Value::Binary(x), Value::Binary(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match natural(p, q)? {
                    Ordering::Equal => {}
                    other => return Ok(other),
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => Err(WireError::new(
            ErrorCode::TypeError,
            format!(
                "cannot order {a} and {b}: sort orders numbers, strings, bytes or arrays of them"
            ),
        )),
    }
}

/// `list` in natural order (descending: the reverse order, equal items kept in their order), or
/// `TypeError` with the list unchanged.
fn sort(list: &mut Vec<Value>, descending: bool) -> Result<(), WireError> {
    let mut order: Vec<usize> = (0..list.len()).collect();
    let mut failed = None;
    order.sort_by(|&i, &j| {
        let (a, b) = if descending {
            (&list[j], &list[i])
        } else {
            (&list[i], &list[j])
        };
        natural(a, b).unwrap_or_else(|e| {
            failed.get_or_insert(e);
            std::cmp::Ordering::Equal
        })
    });
    if let Some(error) = failed {
        return Err(error);
    }
    let mut taken: Vec<Option<Value>> = list.drain(..).map(Some).collect();
    list.extend(
        order
            .into_iter()
            .map(|i| taken[i].take().expect("each index once")),
    );
    Ok(())
}

/// The events of a list given new contents at once (sorted, reversed): cleared, then each item
/// appended.
fn refilled(list: &[Value]) -> Vec<Value> {
    std::iter::once(Value::Array(vec!["clear".into()]))
        .chain(
            list.iter()
                .map(|item| Value::Array(vec!["append".into(), item.clone()])),
        )
        .collect()
}

/// The indices of the items of `list` that are `item`: the same MessagePack encoding, the rule of
/// dict keys.
fn positions<'a>(list: &'a [Value], item: &Value) -> impl Iterator<Item = usize> + 'a {
    let wanted = key_of(item);
    let mut encoded = Vec::with_capacity(wanted.len());
    list.iter().enumerate().filter_map(move |(i, candidate)| {
        encoded.clear();
        encode_into(&mut encoded, candidate);
        (encoded == wanted).then_some(i)
    })
}

/// A list's operations; an array (`fixed`) answers only those that keep its length (the
/// protocol's targets say so, and the server checks them before).
pub(crate) fn list_op(
    list: &mut Vec<Value>,
    op: Op,
    args: &[Value],
    fixed: bool,
) -> Result<Outcome, WireError> {
    if fixed && !op.targets().contains(&super::super::protocol::Kind::Array) {
        return Err(not_exposed(op.name(), "an array (its length is fixed)"));
    }
    Ok(match op {
        Op::ListLen => Outcome::reply(Value::from(list.len())),
        Op::ListAll => Outcome::reply(Value::Array(list.clone())),
        Op::ListRange => {
            let start = bound_arg(args, 0, list.len())?;
            let end = bound_arg(args, 1, list.len())?.max(start);
            Outcome::reply(Value::Array(list[start..end].to_vec()))
        }
        Op::ListGet => Outcome::reply(list[index_arg(args, 0, list.len())?].clone()),
        Op::ListSet => {
            let i = index_arg(args, 0, list.len())?;
            let item = arg(args, 1)?.clone();
            let old = std::mem::replace(&mut list[i], item.clone());
            Outcome::default()
                .dropping(Some(old))
                .event(vec!["set".into(), Value::from(i), item])
        }
        Op::ListAppend => {
            let item = arg(args, 0)?.clone();
            list.push(item.clone());
            Outcome::default().event(vec!["append".into(), item])
        }
        Op::ListExtend => {
            let Value::Array(items) = arg(args, 0)? else {
                return Err(bad("extend takes [items]"));
            };
            list.extend(items.iter().cloned());
            Outcome {
                events: items
                    .iter()
                    .map(|item| Value::Array(vec!["append".into(), item.clone()]))
                    .collect(),
                ..Outcome::default()
            }
        }
        Op::ListInsert => {
            let i = bound_arg(args, 0, list.len())?;
            let item = arg(args, 1)?.clone();
            list.insert(i, item.clone());
            Outcome::default().event(vec!["insert".into(), Value::from(i), item])
        }
        Op::ListPop => match args.first() {
            None | Some(Value::Nil) => match list.pop() {
                Some(item) => Outcome::reply(optional(Some(item.clone())))
                    .dropping(Some(item))
                    .event(vec!["remove".into(), Value::from(list.len())]),
                None => Outcome::reply(Value::Nil),
            },
            // pop(i): Python's, IndexError on an empty list too.
            Some(_) => {
                let i = index_arg(args, 0, list.len())?;
                let item = list.remove(i);
                Outcome::reply(optional(Some(item.clone())))
                    .dropping(Some(item))
                    .event(vec!["remove".into(), Value::from(i)])
            }
        },
        Op::ListSlice => {
            let indices = slice_indices(args, list.len())?;
            Outcome::reply(Value::Array(
                indices.into_iter().map(|i| list[i].clone()).collect(),
            ))
        }
        Op::ListSetSlice => {
            let Value::Array(items) = arg(args, 3)? else {
                return Err(bad("set_slice takes [start, stop, step, [items]]"));
            };
            let indices = slice_indices(args, list.len())?;
            if contiguous(args) && !(fixed && items.len() != indices.len()) {
                // A plain slice takes any number of items: the list grows or shrinks.
                let start = match args.first() {
                    None | Some(Value::Nil) => 0,
                    Some(_) => bound_arg(args, 0, list.len())?,
                };
                let end = start + indices.len();
                let mut outcome = Outcome::default();
                for i in (start..end).rev() {
                    outcome = outcome.event(vec!["remove".into(), Value::from(i)]);
                }
                let old: Vec<Value> = list.splice(start..end, items.iter().cloned()).collect();
                outcome.dropped.extend(old);
                for (k, item) in items.iter().enumerate() {
                    outcome =
                        outcome.event(vec!["insert".into(), Value::from(start + k), item.clone()]);
                }
                outcome
            } else {
                if items.len() != indices.len() {
                    return Err(bad(format!(
                        "a slice of {} items is assigned {} items (only a plain slice of a list \
                         takes another number)",
                        indices.len(),
                        items.len()
                    )));
                }
                let mut outcome = Outcome::default();
                for (i, item) in indices.into_iter().zip(items) {
                    let old = std::mem::replace(&mut list[i], item.clone());
                    outcome = outcome.dropping(Some(old)).event(vec![
                        "set".into(),
                        Value::from(i),
                        item.clone(),
                    ]);
                }
                outcome
            }
        }
        Op::ListDelSlice => {
            let mut indices = slice_indices(args, list.len())?;
            indices.sort_unstable_by(|a, b| b.cmp(a));
            let mut outcome = Outcome::default();
            for i in indices {
                let item = list.remove(i);
                outcome = outcome
                    .dropping(Some(item))
                    .event(vec!["remove".into(), Value::from(i)]);
            }
            outcome
        }
        Op::ListRemoveItem => {
            let item = arg(args, 0)?;
            let Some(i) = positions(list, item).next() else {
                return Err(WireError::new(
                    ErrorCode::ItemMissing,
                    format!("remove_item: {item} is not in the list"),
                ));
            };
            let removed = list.remove(i);
            Outcome::default()
                .dropping(Some(removed))
                .event(vec!["remove".into(), Value::from(i)])
        }
        Op::ListReverse => {
            list.reverse();
            Outcome {
                events: refilled(list),
                ..Outcome::default()
            }
        }
        Op::ListSort => {
            let descending = match args.first() {
                None | Some(Value::Nil) => false,
                Some(v) => v.as_bool().ok_or_else(|| bad("sort takes [descending]"))?,
            };
            sort(list, descending)?;
            Outcome {
                events: refilled(list),
                ..Outcome::default()
            }
        }
        Op::ListRepeat => {
            let n = signed(arg(args, 0)?)?;
            if n <= 0 {
                return Ok(Outcome {
                    reply: Value::Nil,
                    dropped: std::mem::take(list),
                    events: vec![Value::Array(vec!["clear".into()])],
                });
            }
            let len = list.len();
            let total = (len as i128) * n;
            if total > MAX_ITEMS as i128 {
                return Err(bad(format!(
                    "repeat: {len} items {n} times is over {MAX_ITEMS} items, a list's limit"
                )));
            }
            let copies: Vec<Value> = (1..n).flat_map(|_| list[..len].to_vec()).collect();
            list.extend(copies.iter().cloned());
            Outcome {
                events: copies
                    .into_iter()
                    .map(|item| Value::Array(vec!["append".into(), item]))
                    .collect(),
                ..Outcome::default()
            }
        }
        Op::ListRemove => {
            let i = index_arg(args, 0, list.len())?;
            let item = list.remove(i);
            Outcome::reply(item.clone())
                .dropping(Some(item))
                .event(vec!["remove".into(), Value::from(i)])
        }
        Op::ListClear => Outcome {
            reply: Value::Nil,
            dropped: std::mem::take(list),
            events: vec![Value::Array(vec!["clear".into()])],
        },
        Op::ListContains => {
            Outcome::reply(Value::from(positions(list, arg(args, 0)?).next().is_some()))
        }
        Op::ListCount => Outcome::reply(Value::from(positions(list, arg(args, 0)?).count())),
        Op::ListIndex => Outcome::reply(optional(
            positions(list, arg(args, 0)?).next().map(Value::from),
        )),
        Op::ListIncr => {
            let i = index_arg(args, 0, list.len())?;
            let sum = add(&list[i], arg(args, 1)?)?;
            list[i] = sum.clone();
            Outcome::reply(sum.clone()).event(vec!["set".into(), Value::from(i), sum])
        }
        _ => return Err(not_exposed(op.name(), "a list")),
    })
}

pub(crate) fn value_op(value: &mut Value, op: Op, args: &[Value]) -> Result<Value, WireError> {
    match op {
        Op::ValueGet => Ok(value.clone()),
        Op::ValueSet => {
            *value = arg(args, 0)?.clone();
            Ok(Value::Nil)
        }
        Op::ValueFetchAdd => {
            let sum = add(value, arg(args, 0)?)?;
            Ok(std::mem::replace(value, sum))
        }
        Op::ValueCompareExchange => {
            let stored = value == arg(args, 0)?;
            let previous = if stored {
                std::mem::replace(value, arg(args, 1)?.clone())
            } else {
                value.clone()
            };
            Ok(Value::Array(vec![Value::from(stored), previous]))
        }
        _ => Err(not_exposed(op.name(), "a value")),
    }
}

/// `a + b`. Integers add exactly, signed and unsigned alike (an unsigned value above
/// `i64::MAX` plus a negative one is fine): the sum must lie between `i64::MIN` and `u64::MAX`,
/// else `Overflow` and nothing changes; it is stored signed when it fits, unsigned above. A float
/// with either side makes a float, as in Python (`1 + 0.5 == 1.5`). Anything else is a
/// `TypeError`.
fn add(a: &Value, b: &Value) -> Result<Value, WireError> {
    let not_numbers = || WireError::new(ErrorCode::TypeError, format!("cannot add {b} to {a}"));
    let integer = |v: &Value| match v {
        Value::Integer(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    };
    if let (Some(x), Some(y)) = (integer(a), integer(b)) {
        let sum = x + y; // two 64-bit values: no overflow in 128 bits
        return i64::try_from(sum)
            .map(Value::from)
            .or_else(|_| u64::try_from(sum).map(Value::from))
            .map_err(|_| {
                WireError::new(
                    ErrorCode::Overflow,
                    format!("{x} + {y} is beyond 64 bits (i64::MIN to u64::MAX)"),
                )
            });
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_f64() || b.is_f64() || a.is_f32() || b.is_f32() => {
            Ok(Value::from(x + y))
        }
        _ => Err(not_numbers()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dict: &mut Dict, op: Op, args: Vec<Value>) -> Result<Outcome, WireError> {
        dict_op(dict, op, &args)
    }

    #[test]
    fn dict_changes_are_logged_as_sets_and_dels() {
        let mut dict = Dict::new();
        let outcome = run(&mut dict, Op::DictIncr, vec!["n".into(), 2.into()]).unwrap();
        assert_eq!(
            outcome.events,
            [Value::Array(vec!["set".into(), "n".into(), 2.into()])]
        );
        let missed = run(
            &mut dict,
            Op::DictCompareAndSwap,
            vec!["n".into(), 9.into(), 1.into()],
        );
        assert!(missed.unwrap().events.is_empty());
        let outcome = run(&mut dict, Op::DictDel, vec!["n".into()]).unwrap();
        assert_eq!(outcome.reply, Value::from(2));
        assert_eq!(outcome.dropped, [Value::from(2)]);
        let error = run(&mut dict, Op::DictDel, vec!["n".into()]).unwrap_err();
        // An increment that does not add changes nothing, not even by creating its key.
        assert!(run(&mut dict, Op::DictIncr, vec!["m".into(), "text".into()]).is_err());
        assert!(!dict.contains_key(&key_of(&"m".into())));
        assert_eq!(error.code, "KeyMissing");
    }

    #[test]
    fn a_bad_pair_in_update_changes_nothing() {
        let mut dict = Dict::new();
        let pairs = Value::Array(vec![
            Value::Array(vec!["a".into(), 1.into()]),
            Value::Array(vec!["b".into()]),
        ]);
        assert!(run(&mut dict, Op::DictUpdate, vec![pairs]).is_err());
        assert_eq!(dict.len(), 0);
    }

    #[test]
    fn a_key_is_its_canonical_encoding_and_types_stay_apart() {
        // The key 1 sent as a fixint, a uint8 and a uint64, and read back by rmpv.
        let wide: Vec<Value> = [
            &[0x01u8][..],
            &[0xcc, 0x01],
            &[0xcf, 0, 0, 0, 0, 0, 0, 0, 1],
        ]
        .iter()
        .map(|bytes| rmpv::decode::read_value(&mut &bytes[..]).unwrap())
        .collect();
        assert!(wide.iter().all(|k| key_of(k) == key_of(&Value::from(1))));
        assert_eq!(key_of(&Value::from(1i64)), key_of(&Value::from(1u64)));
        let apart = [
            Value::from(1),
            Value::F64(1.0),
            Value::F32(1.0),
            Value::from(true),
            Value::from("a"),
            Value::Binary(b"a".to_vec()),
        ];
        let mut dict = Dict::new();
        for (i, key) in apart.iter().enumerate() {
            run(&mut dict, Op::DictSet, vec![key.clone(), Value::from(i)]).unwrap();
        }
        assert_eq!(
            dict.len(),
            apart.len(),
            "1, 1.0, 1.0f32, true, \"a\", b\"a\" are six keys"
        );
    }

    #[test]
    fn unsigned_sums_beyond_i64_add_up() {
        let big = Value::from(u64::MAX - 1);
        assert_eq!(
            add(&big, &Value::from(1u64)).unwrap(),
            Value::from(u64::MAX)
        );
        assert_eq!(add(&big, &Value::from(2u64)).unwrap_err().code, "Overflow");
    }

    #[test]
    fn signed_and_unsigned_mix_exactly_and_floats_make_floats() {
        let sum = |a: Value, b: Value| add(&a, &b);
        // Above i64::MAX, down by a negative delta: exact, and back to signed when it fits.
        assert_eq!(
            sum(Value::from(u64::MAX), Value::from(-1i64)).unwrap(),
            Value::from(u64::MAX - 1)
        );
        assert_eq!(
            sum(Value::from(i64::MAX as u64 + 1), Value::from(-1i64)).unwrap(),
            Value::from(i64::MAX)
        );
        assert!(
            sum(Value::from(i64::MAX as u64 + 1), Value::from(-1i64))
                .unwrap()
                .is_i64()
        );
        assert_eq!(
            sum(Value::from(-5i64), Value::from(u64::MAX)).unwrap(),
            Value::from(u64::MAX - 5)
        );
        assert_eq!(
            sum(Value::from(i64::MAX), Value::from(1i64)).unwrap(),
            Value::from(i64::MAX as u64 + 1)
        );
        // The edges of 64 bits, both sides.
        assert_eq!(
            sum(Value::from(i64::MIN), Value::from(-1i64))
                .unwrap_err()
                .code,
            "Overflow"
        );
        assert_eq!(
            sum(Value::from(u64::MAX), Value::from(1i64))
                .unwrap_err()
                .code,
            "Overflow"
        );
        assert_eq!(
            sum(Value::from(i64::MIN), Value::from(u64::MAX)).unwrap(),
            Value::from(i64::MAX)
        );
        // A float on either side: a float, as Python's 1 + 0.5.
        assert_eq!(
            sum(Value::from(1i64), Value::from(0.5f64)).unwrap(),
            Value::from(1.5f64)
        );
        assert_eq!(
            sum(Value::from(0.25f64), Value::from(2u64)).unwrap(),
            Value::from(2.25f64)
        );
        assert_eq!(
            sum(Value::from("1"), Value::from(1i64)).unwrap_err().code,
            "TypeError"
        );
        assert_eq!(
            sum(Value::from(true), Value::from(1i64)).unwrap_err().code,
            "TypeError"
        );
    }

    fn ints(values: &[i64]) -> Value {
        Value::Array(values.iter().map(|&v| Value::from(v)).collect())
    }

    fn bound(b: Option<i64>) -> Value {
        b.map_or(Value::Nil, Value::from)
    }

    #[test]
    fn slices_are_pythons() {
        // Expected: CPython 3.11's `list(range(6))[start:stop:step]`.
        type Case = (Option<i64>, Option<i64>, Option<i64>, &'static [i64]);
        let cases: [Case; 12] = [
            (None, None, None, &[0, 1, 2, 3, 4, 5]),
            (Some(1), Some(4), None, &[1, 2, 3]),
            (Some(-2), None, None, &[4, 5]),
            (None, Some(-1), None, &[0, 1, 2, 3, 4]),
            (None, None, Some(2), &[0, 2, 4]),
            (None, None, Some(-1), &[5, 4, 3, 2, 1, 0]),
            (Some(4), Some(1), Some(-1), &[4, 3, 2]),
            (Some(-1), Some(-7), Some(-2), &[5, 3, 1]),
            (Some(10), None, Some(-1), &[5, 4, 3, 2, 1, 0]),
            (Some(-10), Some(3), None, &[0, 1, 2]),
            (Some(5), Some(2), None, &[]),
            (None, None, Some(-4), &[5, 1]),
        ];
        for (start, stop, step, expected) in cases {
            let mut list: Vec<Value> = (0..6).map(Value::from).collect();
            let args = [bound(start), bound(stop), bound(step)];
            let got = list_op(&mut list, Op::ListSlice, &args, false)
                .unwrap()
                .reply;
            assert_eq!(got, ints(expected), "[{start:?}:{stop:?}:{step:?}]");
        }
        let zero = [Value::Nil, Value::Nil, Value::from(0)];
        let mut list: Vec<Value> = (0..6).map(Value::from).collect();
        assert!(list_op(&mut list, Op::ListSlice, &zero, false).is_err());
    }

    #[test]
    fn slice_assignment_deletion_insertion_and_pop_are_pythons() {
        let six = || (0..6).map(Value::from).collect::<Vec<Value>>();
        let run = |op, args: Vec<Value>| {
            let mut list = six();
            list_op(&mut list, op, &args, false).map(|_| Value::Array(list))
        };
        let set = |start: Option<i64>, stop: Option<i64>, step: Option<i64>, items: &[i64]| {
            run(
                Op::ListSetSlice,
                vec![bound(start), bound(stop), bound(step), ints(items)],
            )
        };
        assert_eq!(
            set(Some(1), Some(3), None, &[9, 9, 9]).unwrap(),
            ints(&[0, 9, 9, 9, 3, 4, 5])
        );
        assert_eq!(
            set(None, None, Some(2), &[7, 7, 7]).unwrap(),
            ints(&[7, 1, 7, 3, 7, 5])
        );
        assert_eq!(
            set(Some(4), Some(1), None, &[8]).unwrap(),
            ints(&[0, 1, 2, 3, 8, 4, 5])
        );
        assert!(
            set(None, None, Some(2), &[7]).is_err(),
            "an extended slice takes as many"
        );
        let del = run(
            Op::ListDelSlice,
            vec![Value::Nil, Value::Nil, Value::from(-2)],
        );
        assert_eq!(del.unwrap(), ints(&[0, 2, 4]));
        let insert = |i: i64| run(Op::ListInsert, vec![Value::from(i), Value::from(-1)]);
        assert_eq!(insert(-2).unwrap(), ints(&[0, 1, 2, 3, -1, 4, 5]));
        assert_eq!(insert(-20).unwrap(), ints(&[-1, 0, 1, 2, 3, 4, 5]));
        assert_eq!(
            run(Op::ListPop, vec![Value::from(-2)]).unwrap(),
            ints(&[0, 1, 2, 3, 5])
        );
        let past = run(Op::ListPop, vec![Value::from(6)]).unwrap_err();
        assert_eq!(past.code, "IndexOutOfRange");
        let mut list = six();
        let last = list_op(&mut list, Op::ListGet, &[Value::from(-1)], false).unwrap();
        assert_eq!(last.reply, Value::from(5));
        let mut list = six();
        let missing = list_op(&mut list, Op::ListRemoveItem, &[Value::from(9)], false);
        assert_eq!(missing.unwrap_err().code, "ItemMissing");
        list_op(&mut list, Op::ListRemoveItem, &[Value::from(3)], false).unwrap();
        assert_eq!(Value::Array(list), ints(&[0, 1, 2, 4, 5]));
    }

    #[test]
    fn sort_orders_as_python_and_refuses_what_python_cannot_order() {
        let mut list = vec![
            Value::from(3),
            Value::F64(1.5),
            Value::from(true),
            Value::from(-2),
            Value::from(1u64 << 63),
        ];
        list_op(&mut list, Op::ListSort, &[], false).unwrap();
        // CPython 3.11: sorted([3, 1.5, True, -2, 2**63]).
        let expected = [
            Value::from(-2),
            Value::from(true),
            Value::F64(1.5),
            Value::from(3),
            Value::from(1u64 << 63),
        ];
        assert_eq!(list, expected);
        let pair = |n: i64, s: &str| Value::Array(vec![Value::from(n), Value::from(s)]);
        let mut pairs = vec![pair(1, "b"), pair(1, "a"), pair(0, "z")];
        list_op(&mut pairs, Op::ListSort, &[Value::from(true)], false).unwrap();
        assert_eq!(pairs, [pair(1, "b"), pair(1, "a"), pair(0, "z")]);
        let mut mixed = vec![Value::from(1), Value::from("a")];
        let refused = list_op(&mut mixed, Op::ListSort, &[], false).unwrap_err();
        assert_eq!(refused.code, "TypeError");
        assert_eq!(mixed, [Value::from(1), Value::from("a")], "unchanged");
        let mut list: Vec<Value> = (0..3).map(Value::from).collect();
        list_op(&mut list, Op::ListRepeat, &[Value::from(2)], false).unwrap();
        assert_eq!(Value::Array(list.clone()), ints(&[0, 1, 2, 0, 1, 2]));
        list_op(&mut list, Op::ListReverse, &[], false).unwrap();
        assert_eq!(Value::Array(list.clone()), ints(&[2, 1, 0, 2, 1, 0]));
        let huge = list_op(&mut list, Op::ListRepeat, &[Value::from(1i64 << 40)], false);
        assert_eq!(huge.unwrap_err().code, "BadArguments");
        list_op(&mut list, Op::ListRepeat, &[Value::from(0)], false).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn ranges_clamp_as_python_slices_do() {
        let mut list: Vec<Value> = (0..5).map(Value::from).collect();
        let range = |list: &mut Vec<Value>, a: u64, b: u64| {
            list_op(list, Op::ListRange, &[a.into(), b.into()], false)
                .unwrap()
                .reply
        };
        assert_eq!(
            range(&mut list, 1, 3),
            Value::Array(vec![1.into(), 2.into()])
        );
        assert_eq!(
            range(&mut list, 3, 99),
            Value::Array(vec![3.into(), 4.into()])
        );
        assert_eq!(range(&mut list, 4, 2), Value::Array(vec![]));
        assert!(list_op(&mut list, Op::ListAppend, &[1.into()], true).is_err());
    }
}
