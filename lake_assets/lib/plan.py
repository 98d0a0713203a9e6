"""What each layer's next run has to do, Dagster-free: the planners the sensors, `sync` and the
assets call. Raw: the landed files that are new; bronze: the raw changes it has not applied
(the planner of a model's dates is lib/models.dates_to_sync).

What is new in the landing zone: the one rule the landing sensor, `sync` and raw's runs follow.

A landed file is new when raw does not hold a file of its name, or holds one of another size
(landed again with other content: its raw run fails naming it). Files raw holds that are no
longer landed (expired, removed) are not a change: raw keeps every change ever landed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from lake_assets import formats
from lake_assets.catalog import HISTORY_SUFFIX, Source, Table
from lake_assets.formats.base import (
    RELOAD_MARK,
    LandedFile,
    LandedFileError,
    as_reload,
    base_name,
    digest_of,
)
from lake_assets.lib import cdc, delta, storage
from lake_assets.lib import history as historylib
from lake_assets.lib import raw as rawlib
from lake_assets.lib.cdc import ChangeBatch
from lake_assets.lib.layout import state_path, table_path

# {table: {raw day: identities ("name:size") of its new files}}; a table whose listing fails
# has its first day, with the error as its identity, so that run fails naming the file.
Pending = dict[str, dict[dt.date, tuple[str, ...]]]


def date_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of dates: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + dt.timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def last_partition_day(now: dt.datetime | None = None) -> dt.date:
    """The last daily raw partition: today in UTC (raw's partitions end_offset=1)."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).date()


Reloads = dict[str, list[rawlib.Held]]


def reloads_held(held: dict[str, rawlib.Held]) -> Reloads:
    """{landed name: what raw holds of reloads' files of that name}."""
    out: Reloads = defaultdict(list)
    for name, h in held.items():
        if RELOAD_MARK in name:
            out[base_name(name)].append(h)
    return out


def held_versions(name: str, held: dict[str, rawlib.Held], reloads: Reloads) -> list[rawlib.Held]:
    """What raw holds of a landed name: the file of that name, and any reload's file of it."""
    same = held.get(name)
    return ([same] if same is not None else []) + reloads.get(name, [])


def is_new(f: LandedFile, held: dict[str, rawlib.Held], reloads: Reloads | None = None) -> bool:
    """Raw holds no file of this name, or only ones of another size (other content)."""
    reloads = reloads_held(held) if reloads is None else reloads
    return not any(h.size is None or h.size == f.size for h in held_versions(f.name, held, reloads))


def new_files(
    files: list[LandedFile], held: dict[str, rawlib.Held], last_day: dt.date
) -> dict[dt.date, list[LandedFile]]:
    """The files raw does not hold, by the raw day whose run takes them. A file dated after the
    last partition goes to the last one, whose run fails naming it (no partition can hold it)."""
    out: dict[dt.date, list[LandedFile]] = defaultdict(list)
    reloads = reloads_held(held)
    for f in files:
        if is_new(f, held, reloads):
            out[min(f.partition_date, last_day)].append(f)
    return dict(out)


def to_add(
    landing_root: str,
    source: Source,
    table: Table,
    files: list[LandedFile],
    held: dict[str, rawlib.Held],
) -> list[LandedFile]:
    """What a raw run adds of its days' files: the new ones. A held name landed again with other
    content (another size, or, read here, as the run reads its days' files anyway, the same
    size and another digest) is a reload's file where the format says so (held under its name
    and digest), else raises LandedFileError naming the file."""
    fmt = formats.resolve(source)
    fs = fmt.filesystem(landing_root, source, table)
    out: list[LandedFile] = []
    reloads = reloads_held(held)
    names = set(held)  # and the reloads' files of this run: a reload's next files follow them
    for f in files:
        versions = held_versions(f.name, held, reloads)
        if not versions:
            reload = fmt.is_reload(source, table, f, names, relanded=False)
            out.append(as_reload(f, _digest(fs, f)) if reload else f)
            names.add(out[-1].name)
            continue
        same = [h for h in versions if h.size is None or h.size == f.size]
        if same and all(h.digest is None for h in same):
            continue  # held (raw recorded no digest to tell more)
        digest = _digest(fs, f)
        if any(h.digest == digest for h in same):
            continue
        if fmt.is_reload(source, table, f, names, relanded=True):
            out.append(as_reload(f, digest))
            names.add(out[-1].name)
        elif not same:
            h = versions[0]
            raise _relanded(source, table, f, f"{f.size} bytes; raw holds it as {h.size} bytes")
        else:
            raise _relanded(source, table, f, "same size, other bytes")
    return out


def _relanded(source: Source, table: Table, f: LandedFile, why: str) -> LandedFileError:
    return LandedFileError(
        f"{f.path}: landed again with other content than the file of that name that "
        f"raw/{source.name}/{table.name} holds ({why}); land new changes under a new name"
    )


def _digest(fs, f: LandedFile) -> str:
    with fs.open_input_stream(f.path) as stream:
        return digest_of(stream.read())


def pending_table(
    landing_root: str, lake_root: str, source: Source, table: Table, last_day: dt.date
) -> dict[dt.date, tuple[str, ...]]:
    try:
        files = rawlib.landed_files(landing_root, source, table)
    except LandedFileError as e:
        return {source.start_date: (f"error:{e}",)}
    held = rawlib.held_files(lake_root, source.name, table.name)
    return {
        day: tuple(f"{f.name}:{f.size}" for f in fs)
        for day, fs in new_files(files, held, last_day).items()
    }


def pending(
    landing_root: str, lake_root: str, source: Source, last_day: dt.date | None = None
) -> Pending:
    """Every table's new files by raw day (one listing of the landing zone per table)."""
    last_day = last_day or last_partition_day()
    out: Pending = {}
    for table in source.tables:
        days = pending_table(landing_root, lake_root, source, table, last_day)
        if days:
            out[table.name] = days
    return out


def pending_days(landing_root: str, lake_root: str, source: Source) -> dict[str, set[dt.date]]:
    """{table: the raw days whose runs have new files to add}."""
    return {t: set(days) for t, days in pending(landing_root, lake_root, source).items()}


# -- bronze: which raw changes its next run applies -----------------------------------------

RAW_PARTITION = "_file_date"  # raw's daily partition column: the day of the landed file


def bronze_consumed(lake_root: str, source: str, table: str) -> int | None:
    """The raw version whose changes bronze holds: from bronze's own log, or, in a lake whose
    bronze commits did not carry it yet, from the watermark table of before (read once: it is
    removed once bronze's commit holds the watermark)."""
    bronze_path = table_path(lake_root, "bronze", source, table)
    if not delta.exists(bronze_path):
        return None
    mark = cdc.watermark(bronze_path)
    if mark is None:
        mark = cdc.legacy_watermark(state_path(lake_root, source, table, "watermark"))
    return mark


def bronze_batch(lake_root: str, source: str, table: str, log=None) -> ChangeBatch | None:
    """The raw changes new since bronze last ran, up to raw's current version; None without raw.

    New means: of the landed files raw did not hold at the raw version bronze last consumed
    (see batch_since). Re-applying a change is a no-op, so a batch that holds more is still
    right, only slower.
    """
    return batch_since(
        table_path(lake_root, "raw", source, table), bronze_consumed(lake_root, source, table), log
    )


def history_batch(lake_root: str, source: str, table: str, log=None) -> ChangeBatch | None:
    """As bronze_batch, from the raw version the table's history consumed."""
    path = table_path(lake_root, "bronze", source, table + HISTORY_SUFFIX)
    mark = historylib.watermark(path) if delta.exists(path) else None
    return batch_since(table_path(lake_root, "raw", source, table), mark, log)


def last_batch(lake_root: str, source: str, table: str) -> ChangeBatch | None:
    """The raw changes bronze's last apply took: new between the watermark before bronze's
    current one and the current one; None when bronze has no earlier watermark (its first
    apply, or none in its recent log)."""
    bronze_path = table_path(lake_root, "bronze", source, table)
    if not delta.exists(bronze_path):
        return None
    current, before = cdc.watermark(bronze_path), cdc.previous_watermark(bronze_path)
    if current is None or before is None:
        return None
    return batch_since(table_path(lake_root, "raw", source, table), before, upto=current)


def pending_batch(lake_root: str, source: str, table: str) -> ChangeBatch | None:
    """The raw changes bronze has not applied yet (raw's next batch); None when bronze has
    applied none of raw (or there is no raw)."""
    mark = bronze_consumed(lake_root, source, table)
    if mark is None:
        return None
    return batch_since(table_path(lake_root, "raw", source, table), mark)


def batch_since(
    raw_path: str, mark: int | None, log=None, upto: int | None = None
) -> ChangeBatch | None:
    """Raw's changes new since raw version `mark` (all of raw without one, or with one raw is
    behind: rebuilt), up to raw's current version; None without raw.

    A change is new when raw did not hold its landed file at `mark`. Raw rewrites a day's
    partition whole when a file is added to it, so the partitions changed since `mark` are
    where the new changes are, and the names of the files raw held there at `mark` (a landed
    file is held once, under its name, never changed) say which of their rows were applied.
    When raw's files of `mark` are gone (vacuumed), the changed partitions are applied whole.
    """
    now = delta.version(raw_path) if upto is None else upto
    if now is None:
        return None
    if mark is None or mark > now:
        if log:
            log.info(f"no watermark: applying all of raw at version {now}")
        return ChangeBatch(raw_path, now, RAW_PARTITION, None)
    if mark == now:
        return ChangeBatch(raw_path, now, RAW_PARTITION, ())
    parts = sorted(
        str(p)[:10]
        for p in delta.partitions_changed(raw_path, mark, RAW_PARTITION, upto)
        if p is not None
    )
    applied = held_names(raw_path, mark, parts, log) if parts else ()
    if log:
        more = "..." if len(parts) > 5 else ""
        log.info(
            f"raw versions {mark}..{now}: {len(parts)} changed partition(s) {parts[:5]}{more}, "
            f"less the changes of {len(applied)} file(s) applied at version {mark}"
        )
    return ChangeBatch(raw_path, now, RAW_PARTITION, tuple(parts), applied)


def held_names(raw_path: str, version: int, days: list[str], log=None) -> tuple[str, ...]:
    """The landed files raw held in these partitions at `version` (their changes were applied
    when a watermark says `version`); () when that version's files are gone (vacuumed)."""
    wanted = set(days)
    files = [
        p
        for p, v in delta.files_at(raw_path, version).items()
        if str(v.get(RAW_PARTITION))[:10] in wanted  # as batch_since names the partitions
    ]
    if not files:
        return ()
    if not storage.all_exist(raw_path, files):  # re-applying the partitions whole is a no-op
        if log:
            log.info(f"raw version {version}'s files are gone: its partitions are applied whole")
        return ()
    in_days = ", ".join(f"DATE '{d}'" for d in days)
    sql = f"SELECT DISTINCT _source_file FROM t WHERE {RAW_PARTITION} IN ({in_days})"
    rows = delta.query(raw_path, sql, version=version)
    return tuple(sorted(name for (name,) in rows if name is not None))
