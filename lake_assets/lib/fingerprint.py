"""Skip work whose inputs did not change: a fingerprint of input table versions and settings.

An asset that recomputes a whole table (silver, some gold) stores the fingerprint of what it
read next to its state after it wrote; the next run with the same fingerprint writes nothing.
"""

from __future__ import annotations

import hashlib
import json

from pyspark.sql import SparkSession

from lake_assets.lib import delta


def of(paths: list[str], settings: object = None) -> str:
    """Versions of the input tables (None for an absent one) and a description of the settings."""
    doc = {"inputs": {p: delta.version(p) for p in sorted(paths)}, "settings": repr(settings)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def stored(spark: SparkSession, path: str) -> str | None:
    """The fingerprint stored at `path`, read by delta-rs from the log it holds (on S3 the
    engine would read the table's whole log again). `spark` is kept for the callers."""
    del spark
    if not delta.exists(path):
        return None
    rows = delta.query(path, "SELECT fingerprint FROM t")
    return rows[0][0] if rows else None


def store(spark: SparkSession, path: str, value: str) -> None:
    delta.replace_all(spark, spark.createDataFrame([(value,)], "fingerprint string"), path)
