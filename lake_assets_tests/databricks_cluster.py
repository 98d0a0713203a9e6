"""The emulated cluster's driver (databricks_emulator.py): runs a `spark_python_task` script the
way a Databricks Runtime does.

    python databricks_cluster.py <script> <parameters...>

- a Spark session is up before the script starts, here on the embedded engine (Sail) started in
  this process, and `SparkSession.builder.getOrCreate()` returns it (through SPARK_REMOTE);
- the script runs as `__main__` with `spark`, `sc` and `dbutils` among its globals, as on a
  cluster; `sc` is None, as on a cluster whose Spark is reached over Spark Connect;
- `dbutils.secrets.get(scope, key)` reads the workspace's secret scope.

Run by path, with no PYTHONPATH: the lake's code is only what the task brings (the step
launcher's zip), as on a real cluster.
"""

from __future__ import annotations

import base64
import json
import os
import runpy
import sys
import traceback
import urllib.parse
import urllib.request


class _Secrets:
    def __init__(self, url: str, token: str):
        self._url, self._token = url, token

    def get(self, scope: str, key: str) -> str:
        query = urllib.parse.urlencode({"scope": scope, "key": key})
        request = urllib.request.Request(
            f"{self._url}/api/2.0/secrets/get?{query}",
            headers={"Authorization": f"Bearer {self._token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return base64.b64decode(json.loads(response.read())["value"]).decode()


class _DBUtils:
    def __init__(self, url: str, token: str):
        self.secrets = _Secrets(url, token)


def main() -> None:
    # This file's folder is no part of a cluster's path.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    script, *params = sys.argv[1:]
    dbutils = _DBUtils(
        os.environ.pop("EMULATOR_WORKSPACE_URL"), os.environ.pop("EMULATOR_WORKSPACE_TOKEN")
    )
    os.environ.setdefault("RUST_LOG", "error")
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    os.environ["SPARK_REMOTE"] = f"sc://{host}:{port}"
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    sys.argv = [script, *params]
    code = 0
    try:
        runpy.run_path(
            script,
            init_globals={"spark": spark, "sc": None, "dbutils": dbutils},
            run_name="__main__",
        )
    except BaseException:
        traceback.print_exc()
        code = 1
    # The task has closed its files (events, stdout, stderr on DBFS): the driver is done.
    # Stopping the engine and the interpreter's own exit took 5 s a step here, for nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
