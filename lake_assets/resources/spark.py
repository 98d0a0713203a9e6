"""The `spark` resource: hands assets a SparkSession; the engine behind it is the deployment's."""

from __future__ import annotations

import dagster as dg
from pyspark.sql import SparkSession


class SparkResource(dg.ConfigurableResource):
    """Base: `session()` returns the SparkSession the assets run on."""

    def session(self) -> SparkSession:  # pragma: no cover - abstract
        raise NotImplementedError

    # What an engine can do, for writers that choose their way by it (lib/cdc.py).

    def embedded(self) -> bool:
        """The engine runs in this process and sees its files: on a local lake, this process
        may then write the same tables with delta-rs."""
        return False

    def records_app_transactions(self) -> bool:
        """The engine records Delta's idempotent-write session confs
        (`spark.databricks.delta.write.txnAppId`/`txnVersion`) as an application transaction
        of a MERGE's commit (docs/engine.md, "Watermarks")."""
        return False


class LocalSparkResource(SparkResource):
    """The embedded engine: Sail started in this process on first use (no JVM, no network)."""

    def session(self) -> SparkSession:
        from lake_assets.lib.engine import local_spark

        return local_spark()

    def embedded(self) -> bool:
        return True


class ConnectSparkResource(SparkResource):
    """Any Spark Connect endpoint (a Spark 4 cluster with Delta, Databricks Connect, a Sail
    server): `url` is sc://host:port (LAKE_SPARK_REMOTE). The engine reads and writes the
    lake's paths itself, so it must reach them: the same local folders (a server on this
    machine) or the same object store."""

    url: str

    def session(self) -> SparkSession:
        from lake_assets.lib.engine import remote_spark

        return remote_spark(self.url)


class ClassicSparkResource(SparkResource):
    """Local JVM Spark with Delta (delta-spark's `configure_spark_with_delta_pip`): Spark
    fetches the Delta jars from Maven Central when the session first starts."""

    def session(self) -> SparkSession:
        from lake_assets.lib.engine import classic_spark

        return classic_spark()


class DatabricksSparkResource(SparkResource):
    """On a Databricks cluster (the step launcher runs the step there): the cluster's session."""

    def session(self) -> SparkSession:
        session = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return session

    def records_app_transactions(self) -> bool:
        # Delta on Databricks Runtime does for DML since Delta 2.0 (delta-io/delta#1555).
        return True
