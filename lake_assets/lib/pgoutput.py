"""PostgreSQL's `pgoutput` logical decoding messages (protocol version 1), decoded.

The messages are what `pg_logical_slot_peek_binary_changes(slot, …, 'proto_version', '1',
'publication_names', …)` returns, one per row: Begin, Relation, Insert, Update, Delete,
Truncate, Commit (and Origin and Type, which carry nothing the lake needs). Values come as the
type's text output (or null, or "unchanged TOASTed value"); lib/postgres.py types them.
The layout is PostgreSQL's "Logical Replication Message Formats" (protocol-logicalrep-message-
formats in its documentation).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

# Microseconds since 2000-01-01 UTC: PostgreSQL's epoch for timestamps in the protocol.
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
UNCHANGED = object()  # a TOASTed value the update left unchanged ('u'): not sent


class PgOutputError(ValueError):
    """A message this decoder does not know (a newer protocol, or not pgoutput)."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    typmod: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    relid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: dt.datetime


@dataclass(frozen=True)
class Change:
    """An insert, update or delete: `new` and `old` are tuples of raw values (bytes, None, or
    UNCHANGED), `old` only where the server sent the old row (or its key)."""

    kind: str  # I, U, D
    relid: int
    new: tuple | None
    old: tuple | None
    old_is_key_only: bool


@dataclass(frozen=True)
class Truncate:
    relids: tuple[int, ...]


def _lsn_time(us: int) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=us)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> str:
        b = self.data[self.pos : self.pos + 1].decode("ascii")
        self.pos += 1
        return b

    def int8(self) -> int:
        v = self.data[self.pos]
        self.pos += 1
        return v

    def unpack(self, fmt: struct.Struct):
        v = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return v

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        s = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return s

    def tuple_data(self) -> tuple:
        (n,) = self.unpack(_I16)
        out = []
        data = self.data
        for _ in range(n):
            kind = data[self.pos]
            self.pos += 1
            if kind == 0x74:  # 't': text
                (length,) = _I32.unpack_from(data, self.pos)
                start = self.pos + 4
                out.append(data[start : start + length])
                self.pos = start + length
            elif kind == 0x6E:  # 'n': null
                out.append(None)
            elif kind == 0x75:  # 'u': unchanged TOASTed value
                out.append(UNCHANGED)
            else:
                raise PgOutputError(f"tuple value kind {chr(kind)!r} (binary mode is not used)")
        return tuple(out)


_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!BQQq")
_COL = struct.Struct("!Ii")


def decode(data: bytes):
    """One message: a Begin, Commit, Relation, Change or Truncate (None: one the lake ignores)."""
    r = _Reader(bytes(data))
    kind = r.byte()
    if kind == "B":
        final_lsn, ts, xid = r.unpack(_BEGIN)
        return Begin(final_lsn, _lsn_time(ts), xid)
    if kind == "C":
        _flags, commit_lsn, end_lsn, ts = r.unpack(_COMMIT)
        return Commit(commit_lsn, end_lsn, _lsn_time(ts))
    if kind == "R":
        (relid,) = r.unpack(_U32)
        namespace, name = r.string(), r.string()
        identity = r.byte()
        (n,) = r.unpack(_I16)
        cols = []
        for _ in range(n):
            flags = r.int8()
            col_name = r.string()
            oid, typmod = r.unpack(_COL)
            cols.append(Column(col_name, oid, typmod, bool(flags & 1)))
        return Relation(relid, namespace, name, identity, tuple(cols))
    if kind == "I":
        (relid,) = r.unpack(_U32)
        if r.byte() != "N":
            raise PgOutputError("insert without its new tuple")
        return Change("I", relid, r.tuple_data(), None, False)
    if kind == "U":
        (relid,) = r.unpack(_U32)
        tag = r.byte()
        old, key_only = None, False
        if tag in ("K", "O"):
            old, key_only = r.tuple_data(), tag == "K"
            tag = r.byte()
        if tag != "N":
            raise PgOutputError("update without its new tuple")
        return Change("U", relid, r.tuple_data(), old, key_only)
    if kind == "D":
        (relid,) = r.unpack(_U32)
        tag = r.byte()
        if tag not in ("K", "O"):
            raise PgOutputError("delete without its old tuple")
        return Change("D", relid, None, r.tuple_data(), tag == "K")
    if kind == "T":
        (n,) = r.unpack(_U32)
        r.int8()  # options: CASCADE, RESTART IDENTITY
        return Truncate(tuple(r.unpack(_U32)[0] for _ in range(n)))
    if kind in ("O", "Y", "M"):  # origin, type, logical message: nothing to land
        return None
    raise PgOutputError(f"unknown pgoutput message {kind!r}")


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)
