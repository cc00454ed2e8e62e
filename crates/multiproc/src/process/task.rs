//! What a parent sends its child, and what the child reports back, over the bootstrap socket.
//!
//! Parent to child, once: a [`Task`], whose argument bytes' handles ride as the packet's descriptors.
//! Child to parent: [`Report::Started`] once it holds the task, then one final report; a returned
//! value's handles ride as that packet's descriptors.

use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sys::image::EntryPoint;
use crate::transfer::{self, Message};

/// The function to run, as an entry point whose input is the argument message.
pub(crate) type TaskEntry = EntryPoint<Message, Outcome>;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Task {
    pub(crate) entry: TaskEntry,
    /// The child's name, for [`crate::current_process`].
    pub(crate) name: String,
    /// The child's place in the process tree: `[3, 1]` is the first child of this process's third.
    pub(crate) identity: Vec<u32>,
    /// The encoded arguments; their descriptors are the packet's.
    #[serde(with = "serde_bytes")]
    pub(crate) args: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    Started,
    /// The encoded return value; its descriptors are the packet's.
    Returned(#[serde(with = "serde_bytes")] Vec<u8>),
    Panicked(String),
    ResultUnserializable(String),
    BootstrapFailed(String),
}

impl Report {
    /// The exit code the child ends with after sending this report.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Report::Started | Report::Returned(_) => 0,
            Report::Panicked(_) => 101,
            Report::ResultUnserializable(_) | Report::BootstrapFailed(_) => 1,
        }
    }
}

/// A final report and the descriptors that go with it (those of a returned value).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) report: Report,
    pub(crate) fds: Vec<OwnedFd>,
}

impl From<Report> for Outcome {
    fn from(report: Report) -> Outcome {
        Outcome {
            report,
            fds: Vec::new(),
        }
    }
}

/// The entry point for `f`.
pub(crate) fn entry_for<A, R>(f: fn(A) -> R) -> TaskEntry
where
    A: DeserializeOwned,
    R: Serialize,
{
    EntryPoint::new(f, call::<A, R>)
}

/// Runs in the child: decodes the arguments, calls `f`, catches a panic, encodes the result.
fn call<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R, args: Message) -> Outcome {
    let args: A = match transfer::decode(args) {
        Ok(args) => args,
        Err(e) => {
            return Report::BootstrapFailed(format!("its arguments did not decode: {e}")).into();
        }
    };
    match catch_unwind(AssertUnwindSafe(|| f(args))) {
        Ok(value) => match transfer::encode(&value) {
            Ok(Message { bytes, fds }) => Outcome {
                report: Report::Returned(bytes),
                fds,
            },
            Err(e) => Report::ResultUnserializable(e.message().to_owned()).into(),
        },
        Err(payload) => Report::Panicked(panic_message(payload.as_ref())).into(),
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}
