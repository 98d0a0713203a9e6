"""Shared fixtures: a lake under tmp_path, synced through the real definitions."""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest


def read_delta(path: str | Path, sql: str = "SELECT * FROM t") -> list[dict]:
    """Read a Delta table with delta-rs, an engine independent of the one that wrote it."""
    from deltalake import DeltaTable, QueryBuilder

    result = QueryBuilder().register("t", DeltaTable(str(path))).execute(sql).read_all()
    return pa.table(result).to_pylist()


@dataclass
class Lake:
    tmp: Path
    root: Path
    landing: Path
    catalog: Path
    lines: list[str] = field(default_factory=list)

    def write_catalog(self, text: str) -> Path:
        self.catalog.write_text(textwrap.dedent(text))
        return self.catalog

    def settings(self):
        from lake_assets.settings import Settings

        return Settings.load(str(self.root), str(self.landing), str(self.catalog), "local")

    def defs(self):
        from lake_assets.definitions import build_definitions

        return build_definitions(self.settings())

    def sync(self, instance=None):
        import dagster as dg

        from lake_assets.catalog import load_catalog
        from lake_assets.sync import sync

        self.lines = []
        settings = self.settings()
        if instance is not None:
            return sync(
                settings, self.defs(), load_catalog(settings.sources), instance, self.lines.append
            )
        with dg.DagsterInstance.ephemeral() as inst:
            return sync(
                settings, self.defs(), load_catalog(settings.sources), inst, self.lines.append
            )

    def path(self, layer: str, source: str, table: str) -> Path:
        return self.root / layer / source / table

    def rows(self, layer: str, source: str, table: str, order_by: str | None = None) -> list[dict]:
        sql = "SELECT * FROM t" + (f" ORDER BY {order_by}" if order_by else "")
        return read_delta(self.path(layer, source, table), sql)

    def version(self, layer: str, source: str, table: str) -> int:
        from deltalake import DeltaTable

        return DeltaTable(str(self.path(layer, source, table))).version()


@pytest.fixture
def lake(tmp_path) -> Lake:
    root = tmp_path / "lake"
    landing = tmp_path / "landing"
    root.mkdir()
    landing.mkdir()
    return Lake(tmp_path, root, landing, tmp_path / "catalog.yaml")


@pytest.fixture(scope="session")
def spark():
    from lake_assets.lib.engine import local_spark

    return local_spark()


# Native threads of pyarrow/delta-rs can abort the interpreter's own shutdown (exit 134) after
# every test has run; the run's exit code must be the real outcome, so leave without it.
def pytest_sessionfinish(session, exitstatus):
    session.config._lake_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    status = getattr(config, "_lake_exitstatus", None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
