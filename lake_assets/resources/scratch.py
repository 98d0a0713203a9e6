"""Folders a run writes for itself and removes when done: a bronze run's staged batch
(`_state/<source>/<table>/batch/<run_id>`) and the IO manager's staged rows
(`_state/<source>/<table>/staging/<layer>/<run_id>`).

A run that is killed cannot remove its own, so the next run that writes the same table removes
the folders of runs that are no longer in progress, and only those:
- the run is finished, as the Dagster instance says; or
- the process that made the folder (noted in it, see `claim`) ran on this machine, since its
  last boot, and is gone. That covers a killed `lake-assets sync`, whose run the instance
  keeps as started (an in-process run has no run monitoring) or does not know at all (an
  ephemeral instance).
A folder of a run that is neither (another machine's, or one without a note) stays.
"""

from __future__ import annotations

import json
import os
import socket

import dagster as dg
import pyarrow.fs as pafs

from lake_assets.lib import storage

# Readers of the folder skip it: pyarrow datasets and the engines ignore names starting with `_`.
OWNER = "_lake_owner.json"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:  # not Linux: the host name alone tells the machine
        return ""


def _me() -> dict:
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid()}


def claim(path: str) -> None:
    """Create the run's folder, noting the process that owns it."""
    fs, base = storage.filesystem(path)
    fs.create_dir(base, recursive=True)
    with fs.open_output_stream(f"{base}/{OWNER}") as out:
        out.write(json.dumps(_me()).encode())


def _owner(fs: pafs.FileSystem, folder: str) -> dict | None:
    try:
        with fs.open_input_stream(f"{folder}/{OWNER}") as f:
            return json.loads(f.read())
    except (OSError, ValueError):  # no note yet, or not one of ours
        return None


def _process_gone(owner: dict | None) -> bool:
    me = _me()
    if owner is None or owner.get("host") != me["host"] or owner.get("boot") != me["boot"]:
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return False


def is_leftover(
    instance: dg.DagsterInstance, run_id: str, fs: pafs.FileSystem, folder: str
) -> bool:
    run = instance.get_run_by_id(run_id)
    if run is not None and run.is_finished:
        return True
    return _process_gone(_owner(fs, folder))


def sweep(instance: dg.DagsterInstance, parent: str, own_run_id: str) -> list[str]:
    """Remove the folders under `parent` (one per run id) of runs no longer in progress; their
    run ids."""
    fs, base = storage.filesystem(parent)
    removed = []
    for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        if info.type != pafs.FileType.Directory or info.base_name == own_run_id:
            continue
        if is_leftover(instance, info.base_name, fs, info.path):
            storage.remove_tree(f"{parent.rstrip('/')}/{info.base_name}")
            removed.append(info.base_name)
    return removed
