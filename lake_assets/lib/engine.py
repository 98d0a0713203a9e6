"""The embedded engine: one Sail Spark Connect server per process, started lazily.

Sail speaks the PySpark API over Spark Connect and reads and writes Delta natively (no JVM,
no Maven). The server listens on loopback on a free port and is stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from pyspark.sql import SparkSession

from lake_assets.lib import storage
from lake_assets.settings import SettingsError

_lock = threading.Lock()
_server = None
_session: SparkSession | None = None
_pid: int | None = None

log = logging.getLogger(__name__)

# Every timestamp without a zone is UTC, whatever the machine's TZ.
SESSION_CONF = {"spark.sql.session.timeZone": "UTC"}


def shutdown() -> None:
    """Stop the session and the server (also registered at exit)."""
    global _server, _session
    if _session is not None:
        try:
            _session.stop()
        except Exception:  # the server may already be gone at exit
            pass
        _session = None
    if _server is not None:
        try:
            _server.stop()
        except Exception:
            pass
        _server = None


def local_spark() -> SparkSession:
    """The process's Sail-backed SparkSession, started on first use."""
    global _server, _session, _pid
    with _lock:
        # Sail reads the AWS_* variables when a bucket is first used, not at start: complete
        # them on every call, so an S3 endpoint set after the server started is reached too.
        for k, v in storage.engine_env().items():
            os.environ.setdefault(k, v)
        if _session is not None and _pid == os.getpid():
            return _session
        # A forked child must not reuse its parent's server handle.
        _server = _session = None
        # Sail logs every session at INFO on stderr; keep the CLI's progress readable.
        os.environ.setdefault("RUST_LOG", "error")
        # Sail's allocator (mimalloc) keeps freed pages for a while by default; returning them
        # at once keeps a 5M-row load under 4 GiB (bench/cdc_apply.py). Read when pysail loads.
        os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")
        from pysail.spark import SparkConnectServer

        server = SparkConnectServer("127.0.0.1", 0)
        server.start(background=True)
        host, port = server.listening_address
        builder = SparkSession.builder.remote(f"sc://{host}:{port}")
        for k, v in SESSION_CONF.items():
            builder = builder.config(k, v)
        session = builder.getOrCreate()
        for k, v in SESSION_CONF.items():
            session.conf.set(k, v)
        _server, _session, _pid = server, session, os.getpid()
        atexit.register(shutdown)
        log.debug("started Sail on %s:%s", host, port)
        return session


class EngineUnreachableError(SettingsError):
    """The deployment's engine cannot be reached or started; the message names the setting."""


SPARK_CONNECT_PORT = 15002  # Spark Connect's default, as pyspark takes it


def remote_spark(url: str) -> SparkSession:
    """A session on any Spark Connect endpoint (sc://host:port, LAKE_SPARK_REMOTE).

    The endpoint is tried first (a TCP connection, 5 s at most): the Spark Connect client
    would otherwise retry for minutes, then fail deep inside the first asset."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or SPARK_CONNECT_PORT
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise EngineUnreachableError(
            f"LAKE_SPARK_REMOTE={url}: no Spark Connect server answers at {host}:{port} "
            f"({e.strerror or e})"
        ) from None
    builder = SparkSession.builder.remote(url)
    for k, v in SESSION_CONF.items():
        builder = builder.config(k, v)
    session = builder.getOrCreate()
    for k, v in SESSION_CONF.items():
        session.conf.set(k, v)
    return session


DELTA_SPARK_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def classic_spark() -> SparkSession:
    """Local JVM Spark with Delta: delta-spark's `configure_spark_with_delta_pip` adds the
    Delta jars of the installed delta-spark, which Spark resolves from Maven Central (Ivy)
    when the session starts; a machine that cannot reach it fails here, naming the setting."""
    from delta import configure_spark_with_delta_pip

    builder = SparkSession.builder.master("local[*]").appName("lake_assets")
    for k, v in {**DELTA_SPARK_CONF, **SESSION_CONF}.items():
        builder = builder.config(k, v)
    try:
        return configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as e:  # Ivy's failure surfaces as the JVM gateway's exit, not a type
        raise EngineUnreachableError(
            "LAKE_DEPLOYMENT=classic: local JVM Spark could not start with the Delta jars "
            f"(resolved from Maven Central by Ivy): {str(e).splitlines()[0][:300]}"
        ) from e
