"""The shop's catalog for each landing format the simulator speaks: the packaged one (DMS) with
its `format` (and, for DMS only, its timestamp column), and optionally its start_date, set."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from lake_assets.settings import packaged_catalog


def catalog_text(landing_format: str = "dms", start_date: dt.date | None = None) -> str:
    """The packaged catalog's text for `landing_format`: the tables, silver rules and gold are
    the same whatever brought the rows."""
    text = Path(packaged_catalog()).read_text()
    if start_date is not None:
        text = _sub(r"(?m)^(\s+start_date:\s*).*$", rf'\g<1>"{start_date}"', text, "start_date")
    if landing_format != "dms":
        text = _sub(r"(?m)^(\s+format:\s*)dms\s*$", rf"\g<1>{landing_format}", text, "format")
        # DMS's TimestampColumnName: the other formats carry commit times of their own.
        text = _sub(r"(?m)^\s+timestamp_column:.*\n", "", text, "timestamp_column")
    return text


def write_catalog(
    folder: str | Path, landing_format: str = "dms", start_date=None, header: str = ""
) -> str:
    """The catalog for `landing_format` as `<folder>/catalog.yaml`, with the files it names
    (gold SQL) beside it; its path."""
    packaged = Path(packaged_catalog())
    folder = Path(folder)
    shutil.copytree(
        packaged.parent,
        folder,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.py", "__pycache__"),
    )
    (folder / packaged.name).write_text(header + catalog_text(landing_format, start_date))
    return str(folder / packaged.name)


def _sub(pattern: str, repl: str, text: str, what: str) -> str:
    out, n = re.subn(pattern, repl, text, count=1)
    if n != 1:
        raise ValueError(f"{packaged_catalog()}: no {what} line to set")
    return out
