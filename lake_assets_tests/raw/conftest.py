from lake_assets_tests.assets.conftest import dagster_instance, lake  # noqa: F401  (one shared instance)
