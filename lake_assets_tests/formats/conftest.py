# One Dagster instance shared with the asset tests.
from lake_assets_tests.assets.conftest import dagster_instance, lake  # noqa: F401
