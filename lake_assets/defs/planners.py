"""Which partitions of a partitioned asset downstream of raw a sync must recompute.

A partitioned SQL model names itself in its definition metadata (`lake/model`); its planner
(lake_assets.lib.models.dates_to_sync) says which dates' rows change.
"""

from __future__ import annotations

import datetime as dt

from lake_assets.catalog import Catalog
from lake_assets.lib import models

MODEL = "lake/model"


def partitions_to_sync(node, catalog: Catalog, lake_root: str, spark) -> list[dt.date]:
    ref = node.metadata.get(MODEL)
    if ref is None:
        return []
    source_name, name = str(getattr(ref, "value", ref)).split("/", 1)
    source = catalog.source(source_name)
    model = next(m for m in models.models_of(source) if m.name == name)
    return models.dates_to_sync(spark, lake_root, source, model)
