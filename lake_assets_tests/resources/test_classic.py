"""`LAKE_DEPLOYMENT=classic`: local JVM Spark with Delta through delta-spark's
`configure_spark_with_delta_pip`, whose jars Spark's Ivy resolves from Maven Central.

Where Maven Central answers, a session writes, merges and reads a Delta table, and delta-rs
reads the same rows back. Where it does not (a machine that reaches only PyPI), that test
skips, saying what the probe of Maven Central met; the sync must then fail with one line
naming the setting, not a traceback.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.slow

MAVEN = "https://repo1.maven.org/maven2"


def delta_pom() -> str:
    """The URL of the POM of the delta-spark jar that configure_spark_with_delta_pip asks for."""
    delta = importlib.metadata.version("delta-spark")
    spark = ".".join(importlib.metadata.version("pyspark").split(".")[:2])
    artifact = f"delta-spark_{spark}_2.13"
    return f"{MAVEN}/io/delta/{artifact}/{delta}/{artifact}-{delta}.pom"


def maven_unreachable() -> str | None:
    """Why the delta-spark POM cannot be fetched from Maven Central, None when it can."""
    try:
        with urllib.request.urlopen(delta_pom(), timeout=10) as r:
            r.read(1)
        return None
    except OSError as e:
        return f"Maven Central is unreachable from here ({delta_pom()}: {e})"


@pytest.fixture(scope="module")
def unreachable() -> str | None:
    return maven_unreachable()


CLASSIC_ROUND_TRIP = """
import sys
from lake_assets.lib.engine import classic_spark
from lake_assets.lib import delta
spark = classic_spark()
path = sys.argv[1]
spark.createDataFrame([(1, "a"), (2, "b")], "id bigint, v string").write.format("delta").save(path)
spark.sql(
    f"MERGE INTO delta.`{path}` t USING (SELECT 2L AS id, 'B' AS v UNION ALL SELECT 3L, 'c') s "
    "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
)
print(sorted(tuple(r) for r in spark.read.format("delta").load(path).collect()))
print(sorted(delta.query(path, "SELECT id, v FROM t")))
"""


def test_classic_spark_reads_and_writes_delta(unreachable, tmp_path):
    if unreachable:
        pytest.skip(unreachable)
    result = subprocess.run(
        [sys.executable, "-c", CLASSIC_ROUND_TRIP, str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "[(1, 'a'), (2, 'B'), (3, 'c')]"
    assert result.stdout.strip().splitlines()[-2:] == [expected, expected]


def test_classic_without_the_delta_jars_names_the_setting(unreachable, tmp_path):
    if not unreachable:
        pytest.skip("Maven Central answers here: the Delta jars resolve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=str(tmp_path / "lake"), LAKE_DEPLOYMENT="classic")
    result = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: LAKE_DEPLOYMENT=classic: local JVM Spark could not start with the Delta jars"
    )
    assert "Traceback" not in result.stderr
