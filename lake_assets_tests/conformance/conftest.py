"""Fixtures for the conformance suite: one embedded engine for the whole session."""

from __future__ import annotations

import itertools

import pytest

from lake_assets.lib.engine import local_spark

_view_ids = itertools.count()


@pytest.fixture(scope="session")
def spark():
    """The process's Sail-backed SparkSession (session time zone UTC), started once."""
    return local_spark()


@pytest.fixture
def view_name():
    """A fresh temp-view name: every test registers its own, the session is shared."""
    return lambda stem="v": f"conf_{stem}_{next(_view_ids)}"
