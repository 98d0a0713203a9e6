"""The history tests share the asset tests' lake fixture (one ephemeral Dagster instance).

LAKE_TESTS_HISTORY_BY_ENGINE=1 runs them with every history run on the engine's way, even
where arrow and delta-rs would apply it in process (the embedded engine on a local lake)."""

import os

import pytest

from lake_assets_tests.assets.conftest import dagster_instance, lake  # noqa: F401


@pytest.fixture(autouse=True, scope="session")
def _history_by_engine():
    if os.environ.get("LAKE_TESTS_HISTORY_BY_ENGINE") != "1":
        yield
        return
    from lake_assets.lib import history as historylib

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(historylib, "merges_in_process", lambda embedded, path: False)
        yield
