"""A landing format that lives only in the tests: JSON lines, one file per batch, named
`<yyyyMMdd>-<batch>.jsonl`; each line has `op`, `ts` (ISO, UTC) and the table's columns.

Registered in a catalog by its name `lake_assets_tests.formats.jsonl_format:JsonLinesFormat`,
with no change to the lake's code."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pyarrow as pa

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import LandedFile, LandedFileError, LandingFormat
from lake_assets.lib import types as T
from lake_assets.lib.storage import FileInfo

NAME = "lake_assets_tests.formats.jsonl_format:JsonLinesFormat"
_NAME = re.compile(r"^(\d{8})-(\d+)\.jsonl$")


class JsonLinesFormat(LandingFormat):
    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        name = info.rel.rsplit("/", 1)[-1]
        m = _NAME.match(name)
        if not m:
            raise LandedFileError(f"{info.path}: not a batch file (<yyyyMMdd>-<batch>.jsonl)")
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        return LandedFile(
            path=info.path,
            rel=info.rel,
            name=name,
            is_full_load=False,
            order_key=f"B{m.group(1)}{int(m.group(2)):012d}",
            partition_date=max(day, source.start_date),
            name_time=None,
            size=info.size,
        )

    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        try:
            lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        except ValueError as e:
            raise LandedFileError(f"{file.path}: not JSON lines: {e}") from None
        n = len(lines)
        cols = {c: pa.array([x.get(c) for x in lines], T.arrow_type(t)) for c, t in table.columns}
        commit = [dt.datetime.fromisoformat(x["ts"]).replace(tzinfo=dt.timezone.utc) for x in lines]
        return pa.table(
            {
                **cols,
                "_op": pa.array([str(x.get("op", "")).upper() for x in lines], pa.string()),
                "_commit_ts": pa.array(commit, pa.timestamp("us", tz="UTC")),
                "_file_pos": pa.array(np.arange(n, dtype=np.int64)),
            }
        )


def write_batch(
    landing, source: str, schema: str, table: str, day: str, batch: int, lines: list[dict]
):
    folder = landing / source / schema / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day.replace('-', '')}-{batch}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path
