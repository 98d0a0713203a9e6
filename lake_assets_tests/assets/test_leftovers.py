"""What a killed run leaves behind (its staged batch, its staged rows) the next bronze run
removes; another live run's folders it never touches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import dagster as dg

from ._lake import SRC, assert_ok, catalog, load, r

OWNER = "_lake_owner.json"  # lake_assets.resources.scratch.OWNER


def _folder(lake, kind: str, run_id: str, owner: dict | None = None):
    """A run's folder as a run leaves it: a staged file, and the note of its owner if given."""
    d = lake.root / "_state" / SRC / "t" / kind / run_id
    d.mkdir(parents=True)
    (d / "part-00000.parquet").write_bytes(b"PAR1")
    if owner is not None:
        (d / OWNER).write_text(json.dumps(owner))
    return d


def _me(pid: int) -> dict:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return {"host": socket.gethostname(), "boot": f.read().strip(), "pid": pid}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _run(lake, status: dg.DagsterRunStatus) -> str:
    run_id = str(uuid.uuid4())
    lake.instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id=run_id, status=status))
    return run_id


def test_a_dead_runs_leftovers_are_removed_and_a_live_runs_kept(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in (1, 2)])
    assert_ok(lake.sync())
    failed = _run(lake, dg.DagsterRunStatus.FAILURE)
    started_alive = _run(lake, dg.DagsterRunStatus.STARTED)
    # Killed: the instance still says started (or, ephemeral, never knew it); its process is gone.
    started_killed = _run(lake, dg.DagsterRunStatus.STARTED)
    unknown_killed = str(uuid.uuid4())
    dead = _dead_pid()
    gone = [
        _folder(lake, "batch", failed),
        _folder(lake, "staging/raw", failed),
        _folder(lake, "batch", started_killed, _me(dead)),
        _folder(lake, "staging/silver", unknown_killed, _me(dead)),
    ]
    alive = _me(os.getpid())
    kept = [
        _folder(lake, "batch", started_alive, alive),
        _folder(lake, "staging/raw", started_alive, alive),
        # Another instance's run (a sync running beside this one): nothing says it is over.
        _folder(lake, "batch", str(uuid.uuid4())),
        _folder(lake, "batch", str(uuid.uuid4()), {**_me(dead), "host": "another-machine"}),
    ]
    assert_ok(lake.sync())
    assert [d for d in gone if d.exists()] == []
    assert [d for d in kept if not d.exists()] == []
    assert all((d / "part-00000.parquet").exists() for d in kept)


def test_a_run_notes_its_owner_in_its_folders(lake, monkeypatch):
    from lake_assets.resources import scratch

    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", 1, "v")])
    claimed = []
    original = scratch.claim
    monkeypatch.setattr(
        scratch,
        "claim",
        lambda path: (original(path), claimed.append(json.loads(open(f"{path}/{OWNER}").read())))[
            0
        ],
    )
    assert_ok(lake.sync())
    assert claimed and all(c == _me(os.getpid()) for c in claimed)
    # Removed after the write, as always.
    assert list((lake.root / "_state" / SRC / "t" / "batch").glob("*")) == []
