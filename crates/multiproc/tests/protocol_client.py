#!/usr/bin/env python3
"""A client of the multiproc manager written from docs/manager-protocol.md alone, in another
language, with nothing but Python's standard library (its own MessagePack, too).

usage: protocol_client.py SOCKET_PATH KEY_HEX

It checks what the page promises and prints `ok <check>` for each; any failure is an exception
and a non-zero exit. `tests/other_language.rs` runs it against a real manager.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time


# --- MessagePack, as much as the protocol uses --------------------------------------------------

class Ext:
    def __init__(self, code, data):
        self.code, self.data = code, data

    def __eq__(self, other):
        return isinstance(other, Ext) and (self.code, self.data) == (other.code, other.data)

    def __repr__(self):
        return f"Ext({self.code}, {self.data.hex()})"


def reference(object_id):
    """A reference to an object: extension type 2, the id in 8 bytes big-endian."""
    return Ext(2, struct.pack(">Q", object_id))


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, Ext):
        assert len(v.data) == 8
        return b"\xd7" + struct.pack("b", v.code) + v.data
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def unpack(b, i=0):
    m = b[i]
    i += 1
    if m <= 0x7F:
        return m, i
    if m >= 0xE0:
        return m - 256, i
    if 0x80 <= m <= 0x8F:
        return unpack_map(b, i, m & 0x0F)
    if 0x90 <= m <= 0x9F:
        return unpack_array(b, i, m & 0x0F)
    if 0xA0 <= m <= 0xBF:
        n = m & 0x1F
        return b[i:i + n].decode(), i + n
    fixed = {0xC0: None, 0xC2: False, 0xC3: True}
    if m in fixed:
        return fixed[m], i
    sized = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i",
             0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if m in sized:
        fmt = sized[m]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, b[i:i + n])[0], i + n
    lengths = {0xD9: (">B", "str"), 0xDA: (">H", "str"), 0xDB: (">I", "str"),
               0xC4: (">B", "bin"), 0xC5: (">H", "bin"), 0xC6: (">I", "bin"),
               0xDC: (">H", "array"), 0xDD: (">I", "array"), 0xDE: (">H", "map"), 0xDF: (">I", "map")}
    if m in lengths:
        fmt, kind = lengths[m]
        n = struct.calcsize(fmt)
        count = struct.unpack(fmt, b[i:i + n])[0]
        i += n
        if kind == "str":
            return b[i:i + count].decode(), i + count
        if kind == "bin":
            return bytes(b[i:i + count]), i + count
        if kind == "array":
            return unpack_array(b, i, count)
        return unpack_map(b, i, count)
    if m == 0xD7:
        code = struct.unpack("b", b[i:i + 1])[0]
        return Ext(code, bytes(b[i + 1:i + 9])), i + 9
    raise ValueError(f"marker {m:#x}")


def unpack_array(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def unpack_map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        out[k if not isinstance(k, list) else tuple(k)] = v
    return out, i


# --- The protocol ---------------------------------------------------------------------------------

class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Client:
    def __init__(self, path, key, hello_version=2):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.next_id = 1
        greeting = self.read_exactly(40)
        assert greeting[:8] == b"MPAUTH01", greeting
        server_nonce = greeting[8:]
        client_nonce = os.urandom(32)
        proof = hmac.new(key, b"multiproc-auth-v1 client" + server_nonce + client_nonce,
                         hashlib.sha256).digest()
        self.sock.sendall(b"MPAUTH01" + client_nonce + proof)
        answer = self.read_exactly(40)
        assert answer[:8] == b"MPAUTHOK", answer
        expected = hmac.new(key, b"multiproc-auth-v1 server" + client_nonce + server_nonce,
                            hashlib.sha256).digest()
        assert hmac.compare_digest(answer[8:], expected), "the server does not hold the key"
        self.client_id = int.from_bytes(os.urandom(8), "big")
        self.version = self.call("hello", 0, [hello_version, self.client_id])

    def read_exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the server closed the connection")
            data += chunk
        return data

    def call(self, op, obj=0, args=(), context=None):
        request_id = self.next_id
        self.next_id += 1
        request = [request_id, op, obj, list(args)] + ([context] if context else [])
        payload = pack(request)
        self.sock.sendall(b"MPM1" + struct.pack(">I", len(payload)) + payload)
        header = self.read_exactly(8)
        assert header[:4] == b"MPM1", header
        (length,) = struct.unpack(">I", header[4:])
        (got_id, result), _ = unpack(self.read_exactly(length))
        assert got_id == request_id, (got_id, request_id)
        if "Err" in result:
            raise Refused(*result["Err"])
        return result["Ok"]

    def objects(self):
        return self.call("stats")["objects"]


def refused(code, f):
    try:
        f()
    except Refused as e:
        assert e.code == code, (e.code, code)
        return
    raise AssertionError(f"expected {code}")


def ok(check):
    print("ok", check, flush=True)


def main():
    path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
    c = Client(path, key)
    assert c.version == 2
    ok("hello")

    # A struct a Rust proxy stored is a map by field name; bytes are bin.
    staff = c.call("named", 0, ["staff", "dict"])
    ann = c.call("dict.getitem", staff, ["ann"])
    assert ann == {"name": "Ann", "salary": 100, "badge": b"\x01\x02"}, ann
    c.call("dict.set", staff, ["bob", {"salary": 90, "badge": b"\x03", "name": "Bob"}])
    ok("struct-as-map")

    # Key identity: 1, 1.0 and True are three keys; an integer is one key at any width.
    d = c.call("dict")
    for k in (1, 1.0, True):
        c.call("dict.set", d, [k, repr(k)])
    assert c.call("dict.len", d) == 3
    assert c.call("dict.getitem", d, [1]) == "1"
    ok("key-identity")

    # Lifetime: an object lives while held; released, it is freed.
    base = c.objects()
    scratch = c.call("list", 0, [[1, 2, 3]])
    assert c.objects() == base + 1
    c.call("release", 0, [scratch])
    assert c.objects() == base
    refused("UnknownObject", lambda: c.call("list.len", scratch))
    refused("BadArguments", lambda: c.call("release", 0, [scratch]))
    ok("release-frees")

    # References: a dict stored in a list is held by it, and read back as a reference, which is
    # a hold of the reader's.
    holder = c.call("list", 0, [[]])
    inner = c.call("dict")
    c.call("list.append", holder, [reference(inner)])
    c.call("release", 0, [inner])
    assert c.objects() == base + 2, "the list holds the dict"
    got = c.call("list.get", holder, [-1])
    assert got == reference(inner), got
    c.call("dict.set", inner, ["through", "the reference"])
    c.call("list.clear", holder)
    assert c.objects() == base + 2, "the reader's hold keeps it"
    c.call("release", 0, [inner])
    assert c.objects() == base + 1
    refused("UnknownObject", lambda: c.call("list.append", holder, [reference(inner)]))
    refused("BadArguments", lambda: c.call("dict.set", d, [reference(holder), 1]))
    ok("references")

    # A cycle (a list holding itself) is freed once nothing outside holds it.
    cycle = c.call("list", 0, [[]])
    c.call("list.append", cycle, [reference(cycle)])
    c.call("release", 0, [cycle])
    assert c.objects() == base + 1
    ok("cycle")

    # A loan keeps an object for a proxy in flight; the receiver's hold claims it.
    sent = c.call("dict")
    loan = c.call("lend", 0, [sent])
    c.call("release", 0, [sent])
    receiver = Client(path, key)
    receiver.call("hold", 0, [sent, loan])
    assert receiver.call("dict.len", sent) == 0
    receiver.sock.close()  # its holds end with its last connection
    deadline = time.monotonic() + 30
    while c.objects() != base + 1:
        assert time.monotonic() < deadline, "the receiver's hold outlived its connection"
        time.sleep(0.005)
    ok("loan")

    # Python's slices and negative indices.
    lst = c.call("list", 0, [[0, 1, 2, 3, 4, 5]])
    assert c.call("list.slice", lst, [None, None, -2]) == [5, 3, 1]
    c.call("list.set_slice", lst, [1, 3, None, [9, 9, 9]])
    c.call("list.sort", lst, [True])
    assert c.call("list.all", lst) == [9, 9, 9, 5, 4, 3, 0]
    assert c.call("list.pop", lst, [-1]) == [0]
    ok("lists")

    # Locks: acquire and release are separate calls, for an owner given in the context.
    lock = c.call("lock")
    assert c.call("lock.acquire", lock, [None], {"owner": 7}) == "acquired"
    refused("NotOwner", lambda: c.call("lock.release", lock, [], {"owner": 8}))
    c.call("lock.release", lock, [], {"owner": 7})
    ok("lock")

    # Another protocol version is told, and closed.
    try:
        Client(path, key, hello_version=1)
        raise AssertionError("version 1 was accepted")
    except Refused as e:
        assert e.code == "VersionMismatch" and "version 2" in str(e), e
    ok("version")


if __name__ == "__main__":
    main()
