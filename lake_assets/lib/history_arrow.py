"""The history fold of lib/history.py (`versions`), in process over arrow and numpy: the same
rules, the same result, without the engine's window functions (bench/cdc_apply.py --history:
the window plan was most of a run's history step).

Per key, in `_seq` order: a truncate is a delete of every key; commit times are made
non-decreasing along the order (`_at`); of the changes at one `_at` only the last counts; a run
of changes starts at a delete, at the key's first change, after a delete, or at a change that
differs from the one before on a tracked column; each run that does not end in a delete is a
version with its last change's values, valid from its first `_at` to the next run's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")


class NotComparable(TypeError):
    """A tracked column of a type arrow cannot compare: the engine's fold does it instead."""


def _with_truncates(changes: pa.Table, columns: list[str], keys: tuple[str, ...]) -> pa.Table:
    """The changes but truncates, and for each truncate a delete of every key of `changes`."""
    is_t = pc.equal(changes.column("_op"), "T")
    keep = ["_op", "_seq", "_commit_ts", *columns]
    rows = changes.filter(pc.invert(is_t)).select(keep)
    truncates = changes.filter(is_t)
    if truncates.num_rows == 0:
        return rows
    distinct = rows.select(list(keys)).group_by(list(keys)).aggregate([])
    n, t = distinct.num_rows, truncates.num_rows
    k_idx = np.tile(np.arange(n), t)
    t_idx = np.repeat(np.arange(t), n)
    deletes = {c: pa.nulls(n * t, rows.schema.field(c).type) for c in columns}
    for k in keys:
        deletes[k] = distinct.column(k).take(pa.array(k_idx))
    deletes["_op"] = pa.array(["D"] * (n * t), pa.string())
    deletes["_seq"] = truncates.column("_seq").take(pa.array(t_idx))
    deletes["_commit_ts"] = truncates.column("_commit_ts").take(pa.array(t_idx))
    return pa.concat_tables([rows, pa.table(deletes, schema=rows.schema)])


def _differs(col: pa.ChunkedArray | pa.Array, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Row i's value differs from row j's (null equal to null)."""
    a, b = col.take(pa.array(i)), col.take(pa.array(j))
    try:
        eq = pc.equal(a, b)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as e:
        raise NotComparable(str(e)) from None
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    same = pc.or_(pc.fill_null(eq, False), both_null)
    return ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def _running_max(micros: np.ndarray, valid: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per group (rows from each `first`), the max of the valid values so far (NaN: none yet).
    Float64 holds every microsecond instant of years 1-9999 exactly (below 2**53)."""
    group = np.cumsum(first)
    values = pd.Series(np.where(valid, micros.astype(np.float64), np.nan))
    running = values.groupby(group).cummax()  # NaN where a value is null: carried forward
    return running.groupby(group).ffill().to_numpy()


def versions(changes: pa.Table, keys: tuple[str, ...], untracked: tuple[str, ...]) -> pa.Table:
    """Every version of every key of `changes` (raw's rows of those keys, and the truncates):
    the source columns, `_valid_from`, `_valid_to`, `_is_current`."""
    columns = [c for c in changes.column_names if not c.startswith("_")]
    tracked = [c for c in columns if c not in keys and c not in untracked]
    events = _with_truncates(changes, columns, keys)
    order = pc.sort_indices(events, [(k, "ascending") for k in keys] + [("_seq", "ascending")])
    events = events.take(order)
    n = events.num_rows
    if n == 0:
        return _empty(changes, columns)
    idx = np.arange(n)
    first = np.ones(n, dtype=bool)
    if n > 1:
        new_key = np.zeros(n - 1, dtype=bool)
        for k in keys:
            new_key |= _differs(events.column(k), idx[1:], idx[:-1])
        first[1:] = new_key
    ts = events.column("_commit_ts").cast(TS)
    valid = np.asarray(pc.is_valid(ts).to_numpy(zero_copy_only=False), dtype=bool)
    micros = np.asarray(pc.fill_null(ts.cast(pa.int64()), 0).to_numpy(), dtype=np.int64)
    at = _running_max(micros, valid, first)
    at_valid = ~np.isnan(at)
    at_int = np.where(at_valid, np.nan_to_num(at), 0).astype(np.int64)
    # The last change of each key at each `_at`.
    last = np.ones(n, dtype=bool)
    if n > 1:
        same_at = (at_valid[1:] == at_valid[:-1]) & (~at_valid[1:] | (at_int[1:] == at_int[:-1]))
        last[:-1] = first[1:] | ~same_at
    kept = idx[last]
    ops = np.asarray(events.column("_op").take(pa.array(kept)).to_numpy(zero_copy_only=False))
    m = len(kept)
    k_first = first[kept] if m else first[:0]
    # Keys' first kept rows: a key's first row always survives or is replaced by a later one at
    # the same time, so the group start is where the key changes among the kept rows.
    if m > 1:
        key_change = np.zeros(m - 1, dtype=bool)
        for k in keys:
            key_change |= _differs(events.column(k), kept[1:], kept[:-1])
        k_first = np.concatenate([[True], key_change])
    elif m == 1:
        k_first = np.array([True])
    is_d = ops == "D"
    starts = k_first | is_d
    if m > 1:
        starts[1:] |= is_d[:-1]
        changed = np.zeros(m - 1, dtype=bool)
        for c in tracked:
            changed |= _differs(events.column(c), kept[1:], kept[:-1])
        starts[1:] |= changed
    seg_first = np.flatnonzero(starts)
    seg_last = np.append(seg_first[1:] - 1, m - 1)
    seg_from_valid = at_valid[kept[seg_first]]
    seg_from = at_int[kept[seg_first]]
    n_seg = len(seg_first)
    # The next run's start, within the key.
    nxt_same_key = np.zeros(n_seg, dtype=bool)
    if n_seg > 1:
        nxt_same_key[:-1] = ~k_first[seg_first[1:]]
    to_valid = np.zeros(n_seg, dtype=bool)
    to_val = np.zeros(n_seg, dtype=np.int64)
    if n_seg > 1:
        to_valid[:-1] = nxt_same_key[:-1] & seg_from_valid[1:]
        to_val[:-1] = seg_from[1:]
    # A version ends where the key's next run starts (null: no next run, or one without a
    # time, as the engine's fold's `lead` of a null start).
    is_version = ~is_d[seg_last]
    rows = kept[seg_last[is_version]]
    out = events.select(columns).take(pa.array(rows))
    vf = pa.array(seg_from[is_version], pa.int64()).cast(TS)
    vf = pc.if_else(pa.array(seg_from_valid[is_version]), vf, pa.nulls(len(rows), TS))
    vt = pa.array(to_val[is_version], pa.int64()).cast(TS)
    vt_valid = to_valid[is_version]
    vt = pc.if_else(pa.array(vt_valid), vt, pa.nulls(len(rows), TS))
    return (
        out.append_column("_valid_from", vf)
        .append_column("_valid_to", vt)
        .append_column("_is_current", pa.array(~vt_valid))
    )


def _empty(changes: pa.Table, columns: list[str]) -> pa.Table:
    fields = [changes.schema.field(c) for c in columns]
    fields += [
        pa.field("_valid_from", TS),
        pa.field("_valid_to", TS),
        pa.field("_is_current", pa.bool_()),
    ]
    return pa.schema(fields).empty_table()
