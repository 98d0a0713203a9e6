"""A Databricks workspace on loopback, for tests: the REST endpoints that dagster-databricks'
step launcher and the Databricks SDK call, and a "cluster" that runs a submitted
`spark_python_task` as a local process the way a Databricks Runtime driver would.

Endpoints (as the SDK 0.60 calls them; any other path answers 404 ENDPOINT_NOT_FOUND, and every
call is recorded in `calls`):

- DBFS: `/api/2.0/dbfs/{create,add-block,close,put,read,get-status,list,mkdirs,delete}`, on a
  local folder (`dbfs_root`) that the cluster's processes see at the `/dbfs/` FUSE path: a
  `/dbfs/...` or `dbfs:/...` path in a task is rewritten to that folder.
- Jobs: `/api/2.{0,1,2}/jobs/runs/{submit,get,get-output,cancel}`. A submitted run's libraries
  are "installed" by checking this environment has each pinned PyPI version (as a cluster
  would fail the run on a library it cannot install); then its `spark_python_task` runs.
- Clusters: `/api/2.{0,1}/clusters/get` for the one running cluster (`cluster_id`).
- Secrets: `/api/2.0/secrets/{scopes/create,scopes/list,put,get,list}`; the cluster's
  `dbutils.secrets.get` reads them through `/api/2.0/secrets/get`.

Every request must carry `Authorization: Bearer <token>` (401 otherwise).

The cluster process (`databricks_cluster.py`) gets a clean environment, as a cluster node has:
no AWS credentials, nothing of the test's; `DATABRICKS_RUNTIME_VERSION` set, like a Databricks
Runtime; `dbutils` and `sc` as globals of the task's script; a Spark session on the embedded
engine (Sail) behind `SPARK_REMOTE`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CLUSTER_SCRIPT = Path(__file__).with_name("databricks_cluster.py")
RUNTIME_VERSION = "15.4.x-emulated"
# What a node's environment holds of this machine's: enough to start Python, nothing else.
_NODE_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYENV_VERSION")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Run:
    run_id: int
    task: dict
    cluster_id: str
    libraries: list
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    error: str | None = None
    error_trace: str | None = None
    stdout: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    name: str | None = None


class DatabricksEmulator:
    """Start with `with DatabricksEmulator(folder, token) as ws:`; `ws.host` is its URL."""

    cluster_id = "0101-000000-emulated"

    def __init__(self, folder: Path, token: str, cluster_env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.dbfs_root = self.folder / "dbfs"
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        self.token = token
        # Variables of the cluster's own (its Spark config, in effect), e.g. AWS_ALLOW_HTTP.
        self.cluster_env = dict(cluster_env or {})
        self.calls: list[tuple[str, str]] = []
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.runs: dict[int, Run] = {}
        self._handles: dict[int, tuple[Path, bytearray]] = {}
        self._lock = threading.Lock()
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> DatabricksEmulator:
        emulator = self

        class Handler(_Handler):
            ws = emulator

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for run in self.runs.values():
            if run.process is not None and run.process.poll() is None:
                run.process.kill()
                run.process.wait()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- DBFS ------------------------------------------------------------------------------

    def local(self, path: str) -> Path:
        """The local file of a DBFS path (`dbfs:/x`, `dbfs:///x`, `/x`) or FUSE path (`/dbfs/x`)."""
        if path.startswith("dbfs:"):
            path = path[len("dbfs:") :]
        elif path.startswith("/dbfs/"):
            path = path[len("/dbfs") :]
        if not path.startswith("/"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Path must be absolute: {path}")
        parts = [p for p in path.split("/") if p]
        if any(p == ".." for p in parts):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid path: {path}")
        return self.dbfs_root.joinpath(*parts)

    def _existing(self, path: str) -> Path:
        local = self.local(path)
        if not local.exists():
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {path}."
            )
        return local

    def _status(self, path: str, local: Path) -> dict:
        st = local.stat()
        return {
            "path": path,
            "is_dir": local.is_dir(),
            "file_size": 0 if local.is_dir() else st.st_size,
            "modification_time": int(st.st_mtime * 1000),
        }

    def dbfs(self, op: str, q: dict) -> dict:
        if op == "create":
            local = self.local(q["path"])
            if local.exists() and not q.get("overwrite"):
                raise ApiError(
                    409,
                    "RESOURCE_ALREADY_EXISTS",
                    f"A file or directory already exists at {q['path']}.",
                )
            with self._lock:
                self._next_id += 1
                handle = self._next_id
                self._handles[handle] = (local, bytearray())
            return {"handle": handle}
        if op in ("add-block", "close"):
            handle = int(q["handle"])
            if handle not in self._handles:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"No handle {handle}.")
            if op == "add-block":
                self._handles[handle][1].extend(base64.b64decode(q["data"]))
                return {}
            local, data = self._handles.pop(handle)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(bytes(data))
            return {}
        if op == "put":
            local = self.local(q["path"])
            if local.exists() and not q.get("overwrite"):
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"{q['path']} already exists.")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(base64.b64decode(q.get("contents", "")))
            return {}
        if op == "read":
            local = self._existing(q["path"])
            if local.is_dir():
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{q['path']} is a directory.")
            offset, length = int(q.get("offset", 0)), int(q.get("length", 512 * 1024))
            if length > 1024 * 1024:
                raise ApiError(400, "MAX_READ_SIZE_EXCEEDED", "length must be at most 1 MB")
            with open(local, "rb") as f:
                f.seek(offset)
                data = f.read(length)
            return {"bytes_read": len(data), "data": base64.b64encode(data).decode()}
        if op == "get-status":
            return self._status(q["path"], self._existing(q["path"]))
        if op == "list":
            local = self._existing(q["path"])
            base = q["path"].rstrip("/")
            children = sorted(local.iterdir()) if local.is_dir() else [local]
            return {"files": [self._status(f"{base}/{c.name}", c) for c in children]}
        if op == "mkdirs":
            self.local(q["path"]).mkdir(parents=True, exist_ok=True)
            return {}
        if op == "delete":
            local = self.local(q["path"])
            if local.is_dir():
                if any(local.iterdir()) and not q.get("recursive"):
                    raise ApiError(400, "IO_ERROR", f"{q['path']} is a non-empty directory.")
                shutil.rmtree(local)
            elif local.exists():
                local.unlink()
            return {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for dbfs/{op}")

    # -- secrets ---------------------------------------------------------------------------

    def secret_op(self, op: str, q: dict) -> dict:
        if op == "scopes/create":
            if q["scope"] in self.secrets:
                raise ApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"Scope {q['scope']} already exists!"
                )
            self.secrets[q["scope"]] = {}
            return {}
        if op == "scopes/list":
            return {"scopes": [{"name": s, "backend_type": "DATABRICKS"} for s in self.secrets]}
        scope = self.secrets.get(q.get("scope", ""))
        if scope is None:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Scope {q.get('scope')} does not exist!"
            )
        if op == "put":
            value = q.get("string_value")
            scope[q["key"]] = (
                value.encode() if value is not None else base64.b64decode(q["bytes_value"])
            )
            return {}
        if op == "get":
            if q["key"] not in scope:
                raise ApiError(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Secret {q['key']} does not exist in {q['scope']}!",
                )
            return {"key": q["key"], "value": base64.b64encode(scope[q["key"]]).decode()}
        if op == "list":
            return {"secrets": [{"key": k} for k in scope]}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for secrets/{op}")

    # -- clusters and jobs -----------------------------------------------------------------

    def cluster(self, q: dict) -> dict:
        if q.get("cluster_id") != self.cluster_id:
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", f"Cluster {q.get('cluster_id')} does not exist"
            )
        return {
            "cluster_id": self.cluster_id,
            "cluster_name": "emulated",
            "spark_version": RUNTIME_VERSION,
            "state": "RUNNING",
            "data_security_mode": "SINGLE_USER",
        }

    def submit(self, body: dict) -> dict:
        tasks = body.get("tasks") or [body]
        if len(tasks) != 1:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "the emulator runs one task per run")
        task = tasks[0]
        if "spark_python_task" not in task:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "only spark_python_task is emulated")
        cluster_id = task.get("existing_cluster_id")
        if cluster_id is not None:
            self.cluster({"cluster_id": cluster_id})
        elif task.get("new_cluster"):
            cluster_id = f"job-cluster-{uuid.uuid4().hex[:8]}"  # a job cluster, made for the run
        else:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "a task needs a cluster")
        with self._lock:
            self._next_id += 1
            run = Run(self._next_id, task, cluster_id, list(task.get("libraries") or []))
            run.name = body.get("run_name")
            self.runs[run.run_id] = run
        threading.Thread(target=self._execute, args=(run,), daemon=True).start()
        return {"run_id": run.run_id}

    def _missing_library(self, libraries: list) -> str | None:
        for lib in libraries:
            if "pypi" not in lib:
                return f"library {lib} (only PyPI libraries are emulated)"
            spec = lib["pypi"]["package"]
            name, _, pinned = spec.partition("==")
            try:
                have = version(name)
            except PackageNotFoundError:
                return f"{spec} (not on the index the emulated cluster installs from)"
            if pinned and have != pinned:
                return f"{spec} (the emulated cluster has {name} {have})"
        return None

    def _execute(self, run: Run) -> None:
        missing = self._missing_library(run.libraries)
        if missing:
            run.life_cycle_state, run.result_state = "INTERNAL_ERROR", "FAILED"
            run.state_message = (
                f"Library installation failed for library due to user error: {missing}"
            )
            run.ended = time.time()
            return
        spt = run.task["spark_python_task"]
        script = self.local(spt["python_file"])
        params = [
            str(self.local(p)) if p.startswith(("/dbfs/", "dbfs:")) else p
            for p in spt.get("parameters", [])
        ]
        logs = self.folder / "runs" / str(run.run_id)
        logs.mkdir(parents=True, exist_ok=True)
        env = {k: os.environ[k] for k in _NODE_VARS if k in os.environ}
        env.update(self.cluster_env)
        env.update(
            {
                "DATABRICKS_RUNTIME_VERSION": RUNTIME_VERSION,
                "DB_CLUSTER_ID": run.cluster_id,
                "PYTHONUNBUFFERED": "1",
                # For the dbutils shim only (the cluster script removes them before the task).
                "EMULATOR_WORKSPACE_URL": self.host,
                "EMULATOR_WORKSPACE_TOKEN": self.token,
            }
        )
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            run.process = subprocess.Popen(
                [sys.executable, str(CLUSTER_SCRIPT), str(script), *params],
                stdout=out,
                stderr=err,
                env=env,
                cwd=logs,
            )
            run.life_cycle_state = "RUNNING"
            code = run.process.wait()
        run.stdout = (logs / "stdout").read_text(errors="replace")
        stderr = (logs / "stderr").read_text(errors="replace")
        run.ended = time.time()
        if run.life_cycle_state == "TERMINATING":  # cancelled
            run.life_cycle_state, run.result_state = "TERMINATED", "CANCELED"
            run.state_message = "Run cancelled."
        elif code == 0:
            run.life_cycle_state, run.result_state = "TERMINATED", "SUCCESS"
        else:
            lines = [line for line in stderr.splitlines() if line.strip()]
            run.life_cycle_state, run.result_state = "TERMINATED", "FAILED"
            run.error = lines[-1] if lines else f"exit code {code}"
            run.error_trace = stderr
            run.state_message = "Workload failed, see run output for details"

    def run_json(self, run: Run) -> dict:
        state = {"life_cycle_state": run.life_cycle_state, "state_message": run.state_message}
        if run.result_state:
            state["result_state"] = run.result_state
        task = {
            "task_key": run.task.get("task_key", "task"),
            "run_id": run.run_id,
            "state": state,
            "cluster_instance": {"cluster_id": run.cluster_id},
            "spark_python_task": run.task["spark_python_task"],
            "libraries": run.libraries,
        }
        return {
            "run_id": run.run_id,
            "job_id": run.run_id,  # a one-time run gets a job of its own
            "run_name": run.name,
            "state": state,
            "tasks": [task],
            "cluster_instance": {"cluster_id": run.cluster_id},
            "start_time": int(run.started * 1000),
            "end_time": int(run.ended * 1000) if run.ended else 0,
            "run_page_url": f"{self.host}/#job/{run.run_id}/run/{run.run_id}",
            "run_type": "SUBMIT_RUN",
        }

    def jobs(self, op: str, q: dict) -> dict:
        if op == "runs/submit":
            return self.submit(q)
        run = self.runs.get(int(q.get("run_id", -1)))
        if run is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {q.get('run_id')} does not exist.")
        if op == "runs/get":
            return self.run_json(run)
        if op == "runs/get-output":
            out = {"metadata": self.run_json(run), "logs": run.stdout[-5000:]}
            if run.error:
                out.update(error=run.error, error_trace=run.error_trace)
            return out
        if op == "runs/cancel":
            if run.process is not None and run.process.poll() is None:
                run.life_cycle_state = "TERMINATING"
                run.process.terminate()
            return {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for jobs/{op}")

    def dispatch(self, method: str, path: str, q: dict) -> dict:
        m = re.fullmatch(r"/api/2\.(\d)/(.+)", path)
        if not m:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        rest = m.group(2)
        if rest.startswith("dbfs/"):
            return self.dbfs(rest[len("dbfs/") :], q)
        if rest.startswith("secrets/"):
            return self.secret_op(rest[len("secrets/") :], q)
        if rest.startswith("jobs/"):
            return self.jobs(rest[len("jobs/") :], q)
        if rest == "clusters/get":
            return self.cluster(q)
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")


class _Handler(BaseHTTPRequestHandler):
    ws: DatabricksEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the test reads `calls`, not stderr
        pass

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.ws.calls.append((method, url.path))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if self.headers.get("Authorization") != f"Bearer {self.ws.token}":
                raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if raw:
                q.update(json.loads(raw))
            status, body = 200, self.ws.dispatch(method, url.path, q)
        except ApiError as e:
            status, body = e.status, {"error_code": e.code, "message": e.message}
        except (KeyError, ValueError) as e:
            status, body = 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": repr(e)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")
