"""Gold: per-source KPI tables, built by the source's own module."""

from lake_assets.catalog import CatalogError

from . import shop

# Which gold tables each source's module knows how to build.
BUILDERS = {"shop": (shop.GOLD_TABLES, shop.build, shop.checks, shop.sensors)}


def build(catalog, settings):
    assets, checks, sensors = [], [], []
    for source in catalog.sources:
        if not source.gold:
            continue
        if source.name not in BUILDERS:
            raise CatalogError(f"{catalog.path}: source {source.name!r} declares gold tables but lake_assets has no gold module for it")
        known, build_assets, build_checks, build_sensors = BUILDERS[source.name]
        unknown = [g for g in source.gold if g not in known]
        if unknown:
            raise CatalogError(f"{catalog.path}: source {source.name!r}: unknown gold table(s) {unknown}; known: {', '.join(known)}")
        assets += build_assets(source)
        checks += build_checks(source)
        sensors += build_sensors(source, settings)
    return assets, checks, sensors
