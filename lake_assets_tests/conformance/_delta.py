"""Helpers shared by the conformance tests: read a Delta table back with delta-rs, run a
worker process with its own engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_worker.py")


def read_table(path, sql: str = "select * from t", version: int | None = None) -> pa.Table:
    """Run `sql` over the Delta table at `path` (registered as `t`) with delta-rs.

    Through QueryBuilder, never DeltaTable.to_pyarrow_table(): the latter crashes the
    interpreter at exit now and then (DESIGN.md)."""
    table = DeltaTable(str(path), version=version)
    reader = QueryBuilder().register("t", table).execute(sql)
    return pa.RecordBatchReader.from_stream(reader).read_all()


def rows(path, sql: str = "select * from t", version: int | None = None) -> list[dict]:
    return read_table(path, sql, version).to_pylist()


def version(path) -> int:
    return DeltaTable(str(path)).version()


def history(path) -> list[dict]:
    """Commit infos, newest first."""
    return DeltaTable(str(path)).history()


def field_types(path) -> dict[str, tuple[str, bool]]:
    """{column: (Delta type, nullable)} from the table's own schema."""
    out = {}
    for f in DeltaTable(str(path)).schema().fields:
        t = f.type
        out[f.name] = (getattr(t, "type", None) or str(t), f.nullable)
    return out


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env.update(extra)
    return env


def start_worker(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env=worker_env(**env),
    )


def worker_result(proc: subprocess.Popen, timeout: float = 120) -> dict:
    """The JSON line the worker printed last.

    The worker's exit code is not asserted: the outcome is what it printed (a pyarrow
    thread-shutdown crash at interpreter exit must not turn a real success into a failure)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, f"worker printed no result (exit {proc.returncode}):\n{out}\n{err[-3000:]}"
    return json.loads(lines[-1])


def run_worker(*args: str, timeout: float = 120, **env: str) -> dict:
    return worker_result(start_worker(*args, **env), timeout=timeout)
