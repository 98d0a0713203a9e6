"""LakeContext: the settings and the catalog, loaded once, from which every layer's
definitions are built."""

from __future__ import annotations

from dataclasses import dataclass

from lake_assets.catalog import Catalog, load_catalog
from lake_assets.settings import Settings


@dataclass(frozen=True)
class LakeContext:
    settings: Settings
    catalog: Catalog

    @staticmethod
    def load(settings: Settings) -> LakeContext:
        """The catalog read and checked, models included (their SQL parses, their references
        resolve), so that a bad catalog fails at load, naming the entry at fault."""
        from lake_assets.lib import models

        catalog = load_catalog(settings.sources)
        models.validate(catalog)
        return LakeContext(settings=settings, catalog=catalog)
