"""The model tests share the asset tests' ephemeral Dagster instance and lake fixture."""

from lake_assets_tests.assets.conftest import dagster_instance, lake  # noqa: F401
