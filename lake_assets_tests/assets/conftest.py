"""The asset tests share one ephemeral Dagster instance (sync reads the lake, not run history)."""

from __future__ import annotations

import pytest

from lake_assets_tests.conftest import Lake


class SharedInstanceLake(Lake):
    instance = None

    def sync(self, instance=None):
        return super().sync(instance or self.instance)


@pytest.fixture(scope="session")
def dagster_instance():
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def lake(tmp_path, dagster_instance) -> Lake:
    root, landing = tmp_path / "lake", tmp_path / "landing"
    root.mkdir()
    landing.mkdir()
    out = SharedInstanceLake(tmp_path, root, landing, tmp_path / "catalog.yaml")
    out.instance = dagster_instance
    return out
