"""The history tests share the asset tests' lake fixture (one ephemeral Dagster instance)."""

from lake_assets_tests.assets.conftest import dagster_instance, lake  # noqa: F401
