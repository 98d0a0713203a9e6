"""The only reader of the LAKE_* environment variables.

Everything here is read inside functions, never at import time, so tests and the CLI can
set the environment (or pass flags) before the definitions load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEPLOYMENTS = ("local", "databricks", "connect", "classic")


class SettingsError(ValueError):
    """A LAKE_* setting (or its flag) has a value the lake cannot use."""


def normalize_root(value: str) -> str:
    """A lake or landing root as a URI the engines and pyarrow understand.

    Local paths become absolute ``file://``-less paths (a ``file://`` URI percent-decoded, as
    every URI is); ``s3://`` stays as it is.
    """
    value = value.strip()
    if not value:
        raise SettingsError("an empty path was given for LAKE_ROOT or LAKE_LANDING")
    if value.startswith("file://"):
        value = unquote(urlsplit(value).path)
    if "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme not in ("s3", "s3a"):
            raise SettingsError(
                f"unsupported storage scheme {scheme!r} in {value!r}: use a local path, file:// or s3://"
            )
        return "s3://" + value.split("://", 1)[1].rstrip("/")
    return str(Path(value).expanduser().resolve())


# `%` and two hex digits: deltalake 1.6.6 reads a local table under such a folder at the
# percent-decoded path (docs/engine.md, "Paths"), so no table of the lake could be read there.
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def check_lake_root(root: str) -> None:
    """SettingsError unless the engines can keep Delta tables under the lake root `root`."""
    escape = None if root.startswith("s3://") else _PERCENT_ESCAPE.search(root)
    if escape:
        raise SettingsError(
            f"LAKE_ROOT={root!r}: a local folder whose path holds '%' and two hex digits "
            f"({escape.group()!r}) cannot hold the lake's Delta tables: deltalake 1.6.6 reads "
            "them at the percent-decoded path. Rename the folder or choose another."
        )


def spark_remote(value: str | None) -> str:
    """LAKE_SPARK_REMOTE checked: a Spark Connect URL `sc://host[:port][/;param=value...]`."""
    if not value or not value.strip():
        raise SettingsError(
            "LAKE_DEPLOYMENT=connect needs LAKE_SPARK_REMOTE, the Spark Connect URL of the "
            "engine (sc://host:port)"
        )
    value = value.strip()
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme != "sc" or not parts.hostname or (":" in parts.netloc and port is None):
        raise SettingsError(
            f"LAKE_SPARK_REMOTE={value!r} is not a Spark Connect URL: "
            "write sc://host[:port][/;param=value...] (e.g. sc://127.0.0.1:15002)"
        )
    return value


def packaged_catalog() -> str:
    return str(resources.files("lake_assets") / "sources" / "shop" / "catalog.yaml")


@dataclass(frozen=True)
class Settings:
    lake_root: str
    landing: str
    sources: str
    deployment: str
    # The Spark Connect endpoint of `connect` (LAKE_SPARK_REMOTE); None for the others.
    spark_remote: str | None = None

    @staticmethod
    def load(
        lake_root: str | None = None,
        landing: str | None = None,
        sources: str | None = None,
        deployment: str | None = None,
    ) -> "Settings":
        """Flags win over the environment, the environment over the defaults."""
        root = normalize_root(lake_root or os.environ.get("LAKE_ROOT") or "./.lake")
        check_lake_root(root)
        land = landing or os.environ.get("LAKE_LANDING")
        land = normalize_root(land) if land else f"{root}/landing"
        src = sources or os.environ.get("LAKE_SOURCES") or packaged_catalog()
        dep = (deployment or os.environ.get("LAKE_DEPLOYMENT") or "local").strip()
        if dep not in DEPLOYMENTS:
            raise SettingsError(
                f"LAKE_DEPLOYMENT={dep!r} is not a deployment: "
                f"choose one of {', '.join(DEPLOYMENTS)}"
            )
        remote = spark_remote(os.environ.get("LAKE_SPARK_REMOTE")) if dep == "connect" else None
        return Settings(
            lake_root=root, landing=land, sources=src, deployment=dep, spark_remote=remote
        )

    def as_env(self) -> dict[str, str]:
        """Every variable a step on a cluster needs, from this one place: the LAKE_* variables
        that make `Settings.load()` in another process (a cluster step)
        return these settings. The packaged catalog is left out: the cluster's own copy of the
        package has it at another path. A custom catalog must be at a path the cluster reads
        too (e.g. /dbfs/... or /Workspace/...): without it the step fails naming the file,
        rather than quietly building the packaged catalog's assets."""
        env = {
            "LAKE_ROOT": self.lake_root,
            "LAKE_LANDING": self.landing,
            "LAKE_DEPLOYMENT": self.deployment,
        }
        if self.sources != packaged_catalog():
            env["LAKE_SOURCES"] = self.sources
        # Where the lake's S3 endpoint is (not the credentials: those come from the cluster's
        # instance profile or its secret scope, see DatabricksSettings.secret_scope).
        env.update({k: os.environ[k] for k in FORWARDED_AWS if os.environ.get(k)})
        return env


def source_dsn(variable: str) -> str | None:
    """The connection string in the variable a source's catalog entry names (`dsn_env`), read
    when an extraction connects, never kept; None when it is unset or empty."""
    return os.environ.get(variable) or None


FORWARDED_AWS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")

# The keys the secret scope holds for the lake's S3 credentials, and the variables they become.
SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
}


@dataclass(frozen=True)
class DatabricksSettings:
    """The DATABRICKS_* variables of the `databricks` deployment.

    The host and token themselves stay in the environment (the step launcher reads them as
    `dg.EnvVar`, so they never appear in the definitions); here they are only checked to be set.
    """

    cluster_id: str | None
    new_cluster: dict | None
    staging_prefix: str
    secret_scope: str | None
    poll_interval_seconds: float
    # Databricks sets DATABRICKS_RUNTIME_VERSION on its clusters: a step running there loads
    # the same definitions, but launches nothing.
    on_cluster: bool

    @staticmethod
    def load() -> "DatabricksSettings":
        on_cluster = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))
        if not on_cluster:
            for var, what in (
                ("DATABRICKS_HOST", "the workspace URL, https://<workspace>.cloud.databricks.com"),
                ("DATABRICKS_TOKEN", "a personal access or service principal token"),
            ):
                if not os.environ.get(var, "").strip():
                    raise SettingsError(
                        f"{var} is not set: LAKE_DEPLOYMENT=databricks needs {what}"
                    )
        cluster_id = os.environ.get("DATABRICKS_CLUSTER_ID", "").strip() or None
        spec = os.environ.get("DATABRICKS_NEW_CLUSTER", "").strip() or None
        if not on_cluster and (cluster_id is None) == (spec is None):
            raise SettingsError(
                "set exactly one of DATABRICKS_CLUSTER_ID (an existing cluster) and "
                "DATABRICKS_NEW_CLUSTER (a JSON file of a new cluster's spec) for "
                "LAKE_DEPLOYMENT=databricks"
            )
        prefix = (
            os.environ.get("DATABRICKS_STAGING_PREFIX", "").strip()
            or "/dagster_staging/lake_assets"
        )
        if not prefix.startswith("/"):
            raise SettingsError(
                f"DATABRICKS_STAGING_PREFIX={prefix!r} is not an absolute DBFS path (/...)"
            )
        poll = os.environ.get("DATABRICKS_POLL_INTERVAL_SECONDS", "").strip() or "5"
        try:
            poll_seconds = float(poll)
        except ValueError:
            raise SettingsError(
                f"DATABRICKS_POLL_INTERVAL_SECONDS={poll!r} is not a number"
            ) from None
        return DatabricksSettings(
            cluster_id=cluster_id,
            new_cluster=_new_cluster(spec) if spec and not on_cluster else None,
            staging_prefix=prefix.rstrip("/"),
            secret_scope=os.environ.get("DATABRICKS_SECRET_SCOPE", "").strip() or None,
            poll_interval_seconds=poll_seconds,
            on_cluster=on_cluster,
        )


def _new_cluster(path: str) -> dict:
    try:
        with open(path) as f:
            spec = json.load(f)
    except OSError as e:
        raise SettingsError(
            f"DATABRICKS_NEW_CLUSTER={path!r}: cannot read it ({e.strerror})"
        ) from None
    except ValueError as e:
        raise SettingsError(f"DATABRICKS_NEW_CLUSTER={path!r} is not JSON: {e}") from None
    if not isinstance(spec, dict):
        raise SettingsError(f"DATABRICKS_NEW_CLUSTER={path!r} must hold a JSON object")
    return spec
