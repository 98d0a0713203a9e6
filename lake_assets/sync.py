"""`lake-assets sync`: everything landed and not yet in the lake, through the same definitions.

Plan: first, the extraction of each source the lake reads directly (format postgres: its new
changes land as files); then, for each source, the raw partitions whose landed files differ
from what raw holds (one run per contiguous range of days, BackfillPolicy.single_run), the last
of these runs together with every other asset downstream (bronze, silver, unpartitioned gold)
and their checks; then the partitioned assets downstream of raw, for the partitions their own
planners name. Runs go into the Dagster instance (DAGSTER_HOME when set), so the UI shows them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from lake_assets.catalog import Catalog
from lake_assets.defs import planners
from lake_assets.keys import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, asset_key
from lake_assets.lib import plan
from lake_assets.settings import Settings

Printer = Callable[[str], None]


@dataclass
class SyncResult:
    failures: list[str] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class _Progress:
    """Prints one line per materialization and check of a run, as they happen."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        say: Printer,
        steps: dict[str, list[dg.AssetKey]],
        materialized: set[dg.AssetKey],
    ):
        self.instance, self.run_id, self.say = instance, run_id, say
        # {step: the run's assets it computes}: a step that writes nothing still gets its line.
        self.steps, self.materialized = steps, materialized
        self.stop = threading.Event()
        self.cursor: str | None = None
        self.started: dict[str, float] = {}
        self.pending: dict[str, dict] = {}
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self._drain()

    def _loop(self):
        while not self.stop.wait(0.5):
            try:
                self._drain()
            except Exception:  # the run may not exist yet
                pass

    def _drain(self):
        # Only the events since the last call (a cursor), not the whole run's log every time.
        while True:
            page = self.instance.get_records_for_run(
                self.run_id, cursor=self.cursor, of_type=_PROGRESS_EVENTS, limit=1000
            )
            for record in page.records:
                self._show(record.event_log_entry)
            self.cursor = page.cursor or self.cursor
            if not page.has_more:
                return

    def _show(self, rec) -> None:
        """One event of the run: a line for each finished step's materializations, failures."""
        ev = rec.dagster_event
        if ev is None:
            return
        kind = ev.event_type_value
        if kind == "STEP_START":
            self.started[ev.step_key] = rec.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            self.pending.setdefault(ev.step_key, {}).setdefault(mat.asset_key, []).append(mat)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            secs = rec.timestamp - self.started.get(ev.step_key, rec.timestamp)
            done = self.pending.pop(ev.step_key, {})
            for key, mats in done.items():
                self.say(_line(key, mats, secs))
            self.materialized |= {
                k for k, mats in done.items() if not _NOTHING & set(mats[-1].metadata)
            }
            if kind == "STEP_SUCCESS":
                for key in self.steps.get(ev.step_key, []):
                    if key not in done:
                        name = "/".join(key.path)
                        self.say(f"  {name:<40} unchanged (nothing to do) seconds={secs:.1f}")
            if kind == "STEP_FAILURE":
                self.say(f"  {ev.step_key:<40} FAILED after {secs:.1f}s")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            if not data.passed:
                self.say(f"  check {'/'.join(data.asset_key.path)}:{data.check_name} FAILED")


# Metadata of a materialization that wrote nothing (its inputs were as at its last run).
_NOTHING = {"unchanged", "skipped"}


def _line(key: dg.AssetKey, mats: list, secs: float) -> str:
    """One line per asset: rows after the write, what the run applied, its partitions, seconds."""
    last = mats[-1].metadata
    if "skipped" in last:
        return f"  {'/'.join(key.path):<40} skipped: {last['skipped'].value} seconds={secs:.1f}"
    if "unchanged" in last:
        return (
            f"  {'/'.join(key.path):<40} unchanged (inputs as at its last run) seconds={secs:.1f}"
        )
    rows = last.get("dagster/row_count")
    rows = rows.value if rows is not None else "-"
    if all("rows_written" in m.metadata for m in mats):
        # Each partition counted its own rows (a partitioned model): the run's rows are their sum.
        rows = sum(m.metadata["rows_written"].value for m in mats)
    text = f"  {'/'.join(key.path):<40} rows={rows}"
    if "changes_applied" in last:
        text += f" changes={last['changes'].value} applied={last['changes_applied'].value}"
    elif "changes" in last:
        text += f" changes={last['changes'].value}"  # one figure for the run's whole range
    if "slot_lag_bytes" in last:
        text += f" slot_lag_bytes={last['slot_lag_bytes'].value}"
    parts = sorted(m.partition for m in mats if m.partition)
    if parts:
        text += f" partitions={len(parts)} [{parts[0]}{'..' + parts[-1] if len(parts) > 1 else ''}]"
    return f"{text} seconds={secs:.1f}"


_PROGRESS_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


# Dagster's own wrappers around the error that says what went wrong.
_WRAPPERS = {
    "DagsterExecutionHandleOutputError",
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
}


def _failures(result, names: dict[str, list[dg.AssetKey]], graph) -> list[str]:
    """One line per failed step and per failed ERROR-severity check of a run, each starting with
    the name (a run's label, or "downstream") of the assets it belongs to."""
    by_key = {k: name for name, keys in names.items() for k in keys}
    by_node = {graph.assets_def_for_key(k).node_def.name: name for k, name in by_key.items()}

    def name_of_step(step_key: str) -> str:
        # An asset's step is its node; a check's step is named after the asset's node.
        owners = [node for node in by_node if step_key == node or step_key.startswith(node + "_")]
        return by_node[max(owners, key=len)] if owners else "downstream"

    out = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.event_specific_data.error
            while err.cause is not None and err.cls_name in _WRAPPERS:
                err = err.cause
            msg = (err.message or "").strip().splitlines()
            text = msg[0] if msg else err.cls_name
            if "blocking asset check" in text and "failed" in text:
                continue  # the check's own evaluation below is the one line for it
            # "dagster._core.definitions.events.Failure: <what went wrong>" -> what went wrong
            head, sep, rest = text.partition(": ")
            if sep and "." in head and " " not in head:
                text = rest
            out.append(f"{name_of_step(ev.step_key)}: {ev.step_key} failed: {text}")
        elif ev.event_type_value == "ASSET_CHECK_EVALUATION" and not ev.event_specific_data.passed:
            d = ev.event_specific_data
            if d.severity == dg.AssetCheckSeverity.ERROR:
                owner, asset = by_key.get(d.asset_key, "downstream"), "/".join(d.asset_key.path)
                figures = {k: v.value for k, v in d.metadata.items()}
                out.append(f"{owner}: check {asset}:{d.check_name} failed {figures}")
    return out


def _not_done(result, graph, keys) -> set[dg.AssetKey]:
    """Assets of a run whose step did not succeed (failed, or skipped after an upstream step
    failed), or whose blocking check did not pass."""
    succeeded = {ev.step_key for ev in result.all_events if ev.event_type_value == "STEP_SUCCESS"}
    out = {k for k in keys if graph.assets_def_for_key(k).node_def.name not in succeeded}
    for ev in result.all_events:
        if ev.event_type_value == "ASSET_CHECK_EVALUATION":
            d = ev.event_specific_data
            if not d.passed and d.blocking:
                out.add(d.asset_key)
    return out


@contextlib.contextmanager
def _quiet_skipped_checks():
    """An asset that found nothing changed yields no output, so its checks do not run either;
    Dagster logs that at WARNING for every such check, which is noise in sync's progress. Only
    while sync's run executes: the logger is Dagster's, not ours."""
    logger = logging.getLogger("dagster._core.execution.plan.active")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def run(
    defs: dg.Definitions,
    selection: list[dg.AssetKey],
    instance: dg.DagsterInstance,
    say: Printer,
    label: str,
    tags: dict[str, str] | None = None,
    materialized: set[dg.AssetKey] | None = None,
):
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    run_id = str(uuid.uuid4())  # a run id as Dagster makes them, known before the run starts
    steps: dict[str, list[dg.AssetKey]] = {}
    for key in selection:
        steps.setdefault(graph.assets_def_for_key(key).node_def.name, []).append(key)
    say(f"{label}")
    seen = materialized if materialized is not None else set()
    with _quiet_skipped_checks(), _Progress(instance, run_id, say, steps, seen):
        result = job.execute_in_process(
            instance=instance,
            asset_selection=selection,
            tags={"lake/trigger": "sync", **(tags or {})},
            raise_on_error=False,
            run_id=run_id,
            # Dagster's console log is for the UI; sync prints its own one line per asset.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    return result


def sync(
    settings: Settings,
    defs: dg.Definitions,
    catalog: Catalog,
    instance: dg.DagsterInstance,
    say: Printer = print,
    quality: bool = True,
) -> SyncResult:
    """Run what the planners say is due; `quality`: print silver's quality when it was written
    (the demo prints it with its own report)."""
    from lake_assets.lib.engine import local_spark

    result = SyncResult()
    graph = defs.resolve_asset_graph()
    spark = defs.resources["spark"].session() if "spark" in defs.resources else local_spark()
    started = time.monotonic()
    say(_instance_line(instance))
    done: set[dg.AssetKey] = set()
    extract_keys = {k for k in graph.get_all_asset_keys() if k.path[0] == "extract"}
    # First what a source the lake extracts itself has new: its files land before raw looks.
    for key in sorted(extract_keys, key=lambda k: k.path):
        label = f"{'/'.join(key.path)}: what the source has new"
        res = run(defs, [key], instance, say, label, materialized=done)
        result.failures += _failures(res, {label: [key]}, graph)
        del res
    raw_runs: list[tuple[str, list[dg.AssetKey], dt.date, dt.date]] = []
    for source in catalog.sources:
        pending = plan.pending_days(settings.landing, settings.lake_root, source)
        if not pending:
            say(f"raw/{source.name}: nothing new landed")
            continue
        all_days = sorted({d for days in pending.values() for d in days})
        for first, last in plan.date_ranges(all_days):
            tables = [t for t, days in pending.items() if any(first <= d <= last for d in days)]
            keys = [asset_key("raw", source.name, t) for t in tables]
            raw_runs.append(
                (f"raw/{source.name}: {len(tables)} table(s), {first}..{last}", keys, first, last)
            )
    raw_keys = {k for k in graph.get_all_asset_keys() if k.path[0] == "raw"}
    rest = [
        k
        for k in graph.get_all_asset_keys()
        if k not in raw_keys and k not in extract_keys and graph.get(k).is_materializable
    ]
    downstream = [k for k in rest if graph.get(k).partitions_def is None]
    # Each raw run but the last on its own; the last one together with everything downstream
    # (one run less: a run costs ~0.25 s of Dagster's own work), in which Dagster skips what is
    # downstream of a raw step that fails or a blocking check that does not pass.
    failed_raw: set[dg.AssetKey] = set()
    for label, keys, first, last in raw_runs[:-1]:
        res = run(
            defs, keys, instance, say, label, tags=_range_tags(first, last), materialized=done
        )
        result.failures += _failures(res, {label: keys}, graph)
        failed_raw |= _not_done(res, graph, keys)
        del res  # it holds every step output until the next run otherwise
    blocked: set[dg.AssetKey] = set()
    for k in failed_raw:
        blocked |= set(dg.AssetSelection.assets(k).downstream().resolve(graph)) - {k}
    if blocked:
        names = ", ".join("/".join(k.path) for k in sorted(blocked, key=str)[:6])
        say(f"skipping {len(blocked)} asset(s) downstream of failed raw: {names}")
    downstream = sorted((k for k in downstream if k not in blocked), key=lambda k: k.path)
    partitioned = [k for k in rest if graph.get(k).partitions_def is not None and k not in blocked]
    stopped = set(failed_raw)
    if raw_runs or downstream:
        label, keys, tags = "", [], None
        if raw_runs:
            label, keys, first, last = raw_runs[-1]
            tags = _range_tags(first, last)
        down_label = f"bronze, silver, gold: {len(downstream)} asset(s)"
        res = run(
            defs,
            keys + downstream,
            instance,
            say,
            f"{label}; then {down_label}" if label and downstream else label or down_label,
            tags=tags,
            materialized=done,
        )
        result.failures += _failures(res, {label: keys, "downstream": downstream}, graph)
        stopped |= _not_done(res, graph, keys + downstream)
        del res
    held_back = {
        k
        for k in partitioned
        if set(dg.AssetSelection.assets(k).upstream().resolve(graph)) & stopped
    }
    if held_back:
        names = ", ".join("/".join(k.path) for k in sorted(held_back, key=str))
        say(f"skipping {names}: an upstream asset failed or a blocking check did not pass")
    partitioned = [k for k in partitioned if k not in held_back]
    for key in sorted(partitioned, key=lambda k: k.path):
        # Partitioned models name the partitions a sync must recompute.
        days = planners.partitions_to_sync(graph.get(key), catalog, settings.lake_root, spark)
        for first, last in plan.date_ranges(days):
            label = f"{'/'.join(key.path)}: {first}..{last}"
            res = run(
                defs, [key], instance, say, label, tags=_range_tags(first, last), materialized=done
            )
            result.failures += _failures(res, {label: [key]}, graph)
    result.materialized = sorted("/".join(k.path) for k in done)
    if quality:
        _quality(settings, catalog, done, say)
    say(
        f"sync finished in {time.monotonic() - started:.1f}s with {len(result.failures)} failure(s)"
    )
    return result


def _instance_line(instance: dg.DagsterInstance) -> str:
    if instance.is_ephemeral:
        return (
            "runs recorded in an ephemeral Dagster instance "
            "(set DAGSTER_HOME to keep them for the UI)"
        )
    return f"runs recorded in the Dagster instance at {instance.root_directory}"


def _quality(settings: Settings, catalog: Catalog, done: set[dg.AssetKey], say: Printer) -> None:
    """Silver's quality of each source whose silver this sync wrote."""
    from lake_assets.lib import quality

    touched = sorted({k.path[1] for k in done if k.path[0] == "silver"})
    for name in touched:
        for line in quality.lines(
            name, quality.of_source(settings.lake_root, catalog.source(name))
        ):
            say(line)


def _range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """A run of the daily partitions first..last (one run, BackfillPolicy.single_run)."""
    return {PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()}
