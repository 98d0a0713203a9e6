"""The `landing` and `lake` resources: where files land, and where the lake's tables live."""

from __future__ import annotations

import contextlib

import dagster as dg
import pyarrow as pa

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import LandedFile
from lake_assets.keys import state_path, table_path
from lake_assets.lib import delta, plan
from lake_assets.lib import raw as rawlib


class LandingResource(dg.ConfigurableResource):
    """The landing zone the extraction tool (DMS, ...) writes to: a local path or s3://."""

    root: str

    def files(self, source: Source, table: Table) -> list[LandedFile]:
        return rawlib.landed_files(self.root, source, table)

    def read(
        self,
        source: Source,
        table: Table,
        files: list[LandedFile],
        progress=None,
        lake_schema: pa.Schema | None = None,
        lake_root: str | None = None,
    ) -> pa.Table:
        return rawlib.read_changes(
            self.root, source, table, files, progress, lake_schema, lake_root
        )

    def to_add(
        self, source: Source, table: Table, files: list[LandedFile], held: dict[str, rawlib.Held]
    ) -> list[LandedFile]:
        return plan.to_add(self.root, source, table, files, held)


class LakeResource(dg.ConfigurableResource):
    """The lake root: table and bookkeeping paths, for the assets and checks that read tables."""

    root: str

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        # What a run reads of each table's log is read once (lib/delta.py, logs_kept). Not for
        # a sensor's evaluation (no run): its resources may be left in another thread.
        if context.run is None:
            yield self
            return
        with delta.logs_kept():
            yield self

    def table(self, layer: str, source: str, table: str) -> str:
        return table_path(self.root, layer, source, table)

    def state(self, source: str, table: str, name: str) -> str:
        return state_path(self.root, source, table, name)
