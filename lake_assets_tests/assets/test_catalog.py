"""A wrong source catalog fails early, naming the entry: in load_catalog and in the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lake_assets.catalog import CatalogError, load_catalog

GOOD_TABLE = """
      - name: customers
        schema: public
        primary_key: [customer_id]
"""

BAD = {
    "missing_primary_key": (
        """
sources:
  - name: shop
    format: dms
    start_date: "2024-01-01"
    tables:
      - name: customers
        schema: public
      - name: orders_without_key
        schema: public
""",
        ["customers", "primary_key"],
    ),
    "unknown_format": (
        """
sources:
  - name: shop
    format: debezium_avro
    start_date: "2024-01-01"
    tables:"""
        + GOOD_TABLE,
        ["shop", "debezium_avro"],
    ),
    "duplicate_table": (
        """
sources:
  - name: shop
    format: dms
    start_date: "2024-01-01"
    tables:"""
        + GOOD_TABLE
        + GOOD_TABLE,
        ["shop", "customers", "duplicate"],
    ),
    "unreadable_yaml": (
        """
sources:
  - name: shop
    format: dms
    tables: [customers
      - name: {unclosed
""",
        ["YAML"],
    ),
}


def _write(tmp_path, name: str) -> str:
    text, _ = BAD[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize("name", sorted(BAD))
def test_load_catalog_raises_naming_the_entry(tmp_path, name):
    path = _write(tmp_path, name)
    with pytest.raises(CatalogError) as e:
        load_catalog(path)
    msg = str(e.value)
    assert path in msg, msg
    for word in BAD[name][1]:
        assert word in msg, (word, msg)


def test_missing_catalog_file_raises(tmp_path):
    with pytest.raises(CatalogError, match="nowhere.yaml"):
        load_catalog(str(tmp_path / "nowhere.yaml"))


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """`lake-assets sync --sources <bad>.yaml` for every bad catalog, the processes side by side."""
    tmp = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    procs = {}
    for name in sorted(BAD):
        path = _write(tmp, name)
        procs[name] = (
            path,
            subprocess.Popen(
                [
                    sys.executable,
                    "-W",
                    "ignore",
                    "-m",
                    "lake_assets.cli",
                    "sync",
                    "--sources",
                    path,
                    "--lake-root",
                    str(tmp / "lake"),
                    "--landing",
                    str(tmp / "landing"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    out = {}
    for name, (path, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = (path, proc.returncode, stdout, stderr)
    assert not (tmp / "lake" / "raw").exists()
    return out


@pytest.mark.parametrize("name", sorted(BAD))
def test_cli_sync_with_a_wrong_catalog_exits_non_zero_with_one_line(cli_runs, name):
    path, code, out, err = cli_runs[name]
    assert code not in (0, None), (out, err)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert path in lines[0] and all(w in lines[0] for w in BAD[name][1]), lines[0]
