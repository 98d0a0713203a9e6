"""Table maintenance, by delta-rs: small files compacted, files no version needs any more
removed (VACUUM), a checkpoint of the log. Dagster-free; the job that runs it over the lake is
defs/maintenance.py.

delta-rs, not the engine: the embedded engine (Sail 0.7) has no OPTIMIZE, VACUUM or checkpoint
statement (docs/engine.md). A compaction is a commit that rewrites files without changing a
row (`dataChange: false`); a writer that read the files it replaced and commits after it must
see the conflict: delta-rs's own writers (bronze's MERGEs) do and are retried; raw's engine
writes are serialized with it by raw's write lock (the caller's `exclusive`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from lake_assets.lib import delta


@dataclass(frozen=True)
class Maintained:
    path: str
    files_before: int
    files_after: int
    files_removed: int  # by VACUUM: files no version within the retention needs
    version: int  # of the table after maintenance (a checkpoint of it was written)


def maintain(
    path: str,
    retention_hours: int,
    *,
    compact: bool = True,
    exclusive: contextlib.AbstractContextManager | None = None,
    target_size: int | None = None,
) -> Maintained:
    """Compact the table's small files (when `compact`, inside `exclusive`), VACUUM the files
    that no version of the last `retention_hours` needs, and write a checkpoint."""
    before = len(delta.delta_table(path).file_uris())
    if compact:
        with exclusive or contextlib.nullcontext():
            delta.delta_table(path).optimize.compact(target_size=target_size)
    table = delta.delta_table(path)
    removed = table.vacuum(
        retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
    )
    table = delta.delta_table(path)
    table.create_checkpoint()
    return Maintained(path, before, len(table.file_uris()), len(removed), table.version())
