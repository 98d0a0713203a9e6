"""A real PostgreSQL server on 127.0.0.1 for tests and benchmarks: `initdb` in a temp folder
(`wal_level=logical`), a free port, `pg_ctl start`, and `stop()` after.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user of
Debian's package (or `nobody`), which owns its data folder. The binaries are found on PATH or
in /usr/lib/postgresql/<version>/bin; where they are missing, `start` raises with the command
that installs them (tests fail with it: they never skip).

The role the lake connects as, `lake`, logs in with a password over TCP (scram-sha-256), owns
its database `app` and has REPLICATION, but is not a superuser: what CONTRACT.md asks of it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL = "apt-get update && apt-get install -y postgresql"
USER, PASSWORD, DATABASE = "lake", "s3cret-pw", "app"


class ServerMissing(RuntimeError):
    pass


def bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(d) / "pg_ctl").exists() and (Path(d) / "initdb").exists():
            return Path(d)
    raise ServerMissing(f"PostgreSQL server binaries (initdb, pg_ctl) not found; run: {INSTALL}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServerMissing("running as root and no unprivileged user (postgres, nobody) exists")


@dataclass
class PgServer:
    folder: Path
    port: int
    bin: Path
    user: str | None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, password: str = PASSWORD, user: str = USER, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} password={password}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _check(self, *args: str) -> None:
        out = subprocess.run(self._cmd(*args), capture_output=True, text=True, cwd="/")
        if out.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {out.stderr.strip() or out.stdout}")

    def psql_admin(self, sql: str, dbname: str = "postgres") -> None:
        """SQL as the server's superuser (over its Unix socket, trusted)."""
        self._check("psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.folder), "-p",
                    str(self.port), "-d", dbname, "-c", sql)  # fmt: skip

    def pids(self) -> list[int]:
        """The server's processes (the postmaster and its children), for CPU accounting."""
        head = int((self.data / "postmaster.pid").read_text().split()[0])
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(head)], capture_output=True)
        return [head, *(int(p) for p in out.stdout.split())]

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"),
                       capture_output=True, cwd="/")  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> PgServer:
    """A fresh server with the role `lake` and its database `app`."""
    bindir = bin_dir()
    user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="lake-pg-"))
    if user:
        shutil.chown(folder, user)
    server = PgServer(folder, _free_port(), bindir, user)
    pwfile = folder / "pw"
    pwfile.write_text("admin-only\n")
    if user:
        shutil.chown(pwfile, user)
    server._check("initdb", "-D", str(server.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                  "--locale=C")  # fmt: skip
    with open(server.data / "postgresql.conf", "a") as conf:
        conf.write(
            f"port = {server.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{folder}'\nwal_level = logical\n"
            "max_replication_slots = 10\nmax_wal_senders = 10\nfsync = off\n"
            "full_page_writes = off\nshared_buffers = 64MB\n"
        )
    log = folder / "server.log"
    try:
        server._check("pg_ctl", "-D", str(server.data), "-l", str(log), "-w", "-t", "60", "start")
    except RuntimeError as e:
        text = log.read_text() if log.exists() else ""
        raise RuntimeError(f"{e}\n{text[-2000:]}") from None
    server.psql_admin(f"CREATE ROLE {USER} LOGIN REPLICATION PASSWORD '{PASSWORD}'")
    server.psql_admin(f"CREATE DATABASE {DATABASE} OWNER {USER}")
    return server


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
