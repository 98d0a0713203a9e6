"""Which partitions of a partitioned asset downstream of raw a sync must recompute.

An asset names its planner in its definition metadata (`lake/sync_partitions`); a planner
is a function (asset node, settings, spark) -> list of dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

SYNC_PARTITIONS = "lake/sync_partitions"
PLANNERS: dict[str, Callable] = {}


def planner(name: str):
    def register(fn):
        PLANNERS[name] = fn
        return fn

    return register


def partitions_to_sync(node, settings, spark) -> list[dt.date]:
    name = node.metadata.get(SYNC_PARTITIONS)
    if name is None:
        return []
    name = getattr(name, "value", name)
    if name not in PLANNERS:
        raise KeyError(f"asset {'/'.join(node.key.path)} names an unknown sync planner {name!r}")
    return PLANNERS[name](node, settings, spark)
