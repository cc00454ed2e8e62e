//! Mutual authentication of a new connection with a shared key: HMAC-SHA256 over both sides'
//! random nonces, with the protocol version and each side's role inside the MAC.
//!
//! ```text
//! server -> client   HELLO   "MPAUTH01" | server nonce (32)
//! client -> server   PROOF   "MPAUTH01" | client nonce (32) | HMAC(key, "multiproc-auth-v1 client" | server nonce | client nonce)
//! server -> client   either  "MPAUTHNO"                                  (wrong key; then close)
//!                    or      "MPAUTHOK" | HMAC(key, "multiproc-auth-v1 server" | client nonce | server nonce)
//! ```
//!
//! Every message has a fixed size, so nothing is allocated from what a peer claims; there is one
//! version and no negotiation, so nothing to downgrade to; MACs are compared in constant time. A
//! client that gets a wrong server proof closes: a server without the key learns nothing and gets
//! nothing. Each step waits at most [`HANDSHAKE_TIMEOUT`] (counted from the start).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ConnectError;
use crate::sys;

/// How long a handshake may take in all.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

const MAGIC: &[u8; 8] = b"MPAUTH01";
const ACCEPTED: &[u8; 8] = b"MPAUTHOK";
const REFUSED: &[u8; 8] = b"MPAUTHNO";
pub(crate) const NONCE: usize = 32;
const MAC: usize = 32;
const CLIENT_ROLE: &[u8] = b"multiproc-auth-v1 client";
/// The sizes of the server's hello, the client's proof and the server's acceptance.
pub(crate) const HELLO: usize = 8 + NONCE;
pub(crate) const PROOF: usize = 8 + NONCE + MAC;
pub(crate) const ACCEPTANCE: usize = 8 + MAC;
const SERVER_ROLE: &[u8] = b"multiproc-auth-v1 server";

/// How the socket frames bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One datagram per message (Unix `SOCK_SEQPACKET`).
    Packets,
    /// A byte stream (TCP).
    Stream,
}

struct Handshake<'a> {
    socket: BorrowedFd<'a>,
    framing: Framing,
    deadline: Instant,
}

impl<'a> Handshake<'a> {
    fn start(socket: BorrowedFd<'a>, framing: Framing) -> Handshake<'a> {
        Handshake {
            socket,
            framing,
            deadline: Instant::now() + HANDSHAKE_TIMEOUT,
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<(), ConnectError> {
        sys::send_all(self.socket, bytes).map_err(ConnectError::Os)
    }

    /// Receives one datagram into `buf`; returns its length.
    fn recv_datagram(&self, buf: &mut [u8]) -> Result<usize, ConnectError> {
        if !sys::wait_readable(self.socket, Some(self.deadline)).map_err(ConnectError::Os)? {
            return Err(ConnectError::HandshakeTimeout);
        }
        match sys::recv_some(self.socket, buf).map_err(ConnectError::Os)? {
            0 => Err(ConnectError::Protocol(
                "the peer closed the connection during the handshake",
            )),
            n => Ok(n),
        }
    }

    /// Receives exactly `N` bytes: one datagram of that size, or that many stream bytes.
    fn recv<const N: usize>(&self) -> Result<[u8; N], ConnectError> {
        let mut buf = [0u8; N];
        let mut filled = 0;
        while filled < N {
            if !sys::wait_readable(self.socket, Some(self.deadline)).map_err(ConnectError::Os)? {
                return Err(ConnectError::HandshakeTimeout);
            }
            let n = sys::recv_some(self.socket, &mut buf[filled..]).map_err(ConnectError::Os)?;
            if n == 0 {
                return Err(ConnectError::Protocol(
                    "the peer closed the connection during the handshake",
                ));
            }
            filled += n;
            if self.framing == Framing::Packets && filled != N {
                return Err(ConnectError::Protocol(
                    "a handshake message of the wrong size",
                ));
            }
        }
        Ok(buf)
    }
}

fn mac(key: &[u8], role: &[u8], first: &[u8], second: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(role);
    mac.update(first);
    mac.update(second);
    mac
}

fn nonce() -> Result<[u8; NONCE], ConnectError> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce)
        .map_err(|e| ConnectError::Os(io::Error::other(format!("no randomness: {e}"))))?;
    Ok(nonce)
}

/// The server's first message, and the nonce in it.
pub(crate) fn server_hello() -> Result<([u8; HELLO], [u8; NONCE]), ConnectError> {
    let server_nonce = nonce()?;
    let mut hello = [0u8; HELLO];
    hello[..8].copy_from_slice(MAGIC);
    hello[8..].copy_from_slice(&server_nonce);
    Ok((hello, server_nonce))
}

/// Whether the first bytes of a client's proof can begin one (the magic, as far as it came).
pub(crate) fn proof_may_start_with(bytes: &[u8]) -> bool {
    let n = bytes.len().min(MAGIC.len());
    bytes[..n] == MAGIC[..n]
}

/// What the server answers a client's `proof` (the accepting side is
/// [`Admission`](super::admission::Admission), which runs many handshakes at once): the acceptance (with its own proof), or the
/// fixed refusal and [`ConnectError::AuthFailed`].
pub(crate) fn server_verdict(
    key: &[u8],
    server_nonce: &[u8; NONCE],
    proof: &[u8; PROOF],
) -> Result<[u8; ACCEPTANCE], (&'static [u8], ConnectError)> {
    if &proof[..8] != MAGIC {
        return Err((
            &[],
            ConnectError::Protocol("not a multiproc client, or another version"),
        ));
    }
    let client_nonce = &proof[8..8 + NONCE];
    if mac(key, CLIENT_ROLE, server_nonce, client_nonce)
        .verify_slice(&proof[8 + NONCE..])
        .is_err()
    {
        return Err((REFUSED, ConnectError::AuthFailed));
    }
    let ours = mac(key, SERVER_ROLE, client_nonce, server_nonce)
        .finalize()
        .into_bytes();
    let mut accepted = [0u8; ACCEPTANCE];
    accepted[..8].copy_from_slice(ACCEPTED);
    accepted[8..].copy_from_slice(&ours);
    Ok(accepted)
}

/// The client's proof for the server's nonce, and the client's own nonce in it.
pub(crate) fn client_proof(
    key: &[u8],
    server_nonce: &[u8],
) -> Result<([u8; PROOF], [u8; NONCE]), ConnectError> {
    let client_nonce = nonce()?;
    let mac = mac(key, CLIENT_ROLE, server_nonce, &client_nonce)
        .finalize()
        .into_bytes();
    let mut proof = [0u8; PROOF];
    proof[..8].copy_from_slice(MAGIC);
    proof[8..8 + NONCE].copy_from_slice(&client_nonce);
    proof[8 + NONCE..].copy_from_slice(&mac);
    Ok((proof, client_nonce))
}

/// The connecting side: proves it has the key, then checks that the server has it too.
pub(crate) fn client(
    socket: BorrowedFd<'_>,
    framing: Framing,
    key: &[u8],
) -> Result<(), ConnectError> {
    let io = Handshake::start(socket, framing);
    let hello: [u8; 8 + NONCE] = io.recv()?;
    if &hello[..8] != MAGIC {
        return Err(ConnectError::Protocol(
            "not a multiproc listener, or another version",
        ));
    }
    let server_nonce = &hello[8..];
    let (proof, client_nonce) = client_proof(key, server_nonce)?;
    io.send(&proof)?;
    // The refusal is 8 bytes, the acceptance 40.
    let mut reply = [0u8; 8 + MAC];
    match framing {
        Framing::Packets => {
            let n = io.recv_datagram(&mut reply)?;
            if n == 8 && &reply[..8] == REFUSED {
                return Err(ConnectError::AuthFailed);
            }
            if n != reply.len() {
                return Err(ConnectError::Protocol(
                    "a handshake message of the wrong size",
                ));
            }
        }
        Framing::Stream => {
            let code: [u8; 8] = io.recv()?;
            if &code == REFUSED {
                return Err(ConnectError::AuthFailed);
            }
            let rest: [u8; MAC] = io.recv()?;
            reply[..8].copy_from_slice(&code);
            reply[8..].copy_from_slice(&rest);
        }
    }
    check_server(key, &reply, &client_nonce, server_nonce)
}

fn check_server(
    key: &[u8],
    reply: &[u8; 8 + MAC],
    client_nonce: &[u8],
    server_nonce: &[u8],
) -> Result<(), ConnectError> {
    if &reply[..8] != ACCEPTED {
        return Err(ConnectError::AuthFailed);
    }
    mac(key, SERVER_ROLE, client_nonce, server_nonce)
        .verify_slice(&reply[8..])
        .map_err(|_| ConnectError::AuthFailed)
}
