"""A real PostgreSQL server from Debian's binaries, on 127.0.0.1 and a free port.

PostgreSQL refuses to run as root, so under root (CI containers) the server
runs as the `postgres` system user that Debian's package creates. The cluster
lives in a temporary folder and is stopped by PID (then removed) at teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.servers import stop_process

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PASSWORD = "pg-test-s3cret-pw"


def pg_binary(name: str) -> str:
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    data_dir: Path
    process: subprocess.Popen

    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (idempotent) and return its URL."""
        env = {**os.environ, "PGPASSWORD": self.password}
        exists = subprocess.run(
            [pg_binary("psql"), "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        if not exists:
            subprocess.run(
                [pg_binary("createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name],
                env=env, capture_output=True, text=True, check=True,
            )
        return self.url(name)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT, timeout=20)  # fast shutdown: abort transactions, exit cleanly
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _as_postgres_user() -> list[str]:
    # setpriv execs in place (runuser forks), so the PID we hold is the server itself.
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.geteuid() == 0 else []


def start_postgres(timeout: float = 60.0) -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="mlci-pg-"))
    data_dir = root / "data"
    user = "mlci"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    subprocess.run(
        [*_as_postgres_user(), pg_binary("initdb"), "-D", str(data_dir), "-U", user, "--pwfile", str(pwfile),
         "-A", "scram-sha-256", "--no-sync", "-E", "UTF8"],
        capture_output=True, text=True, check=True,
    )
    port = free_port()
    log = root / "server.log"
    log_handle = log.open("w")
    if os.geteuid() == 0:
        shutil.chown(log, "postgres", "postgres")
    process = subprocess.Popen(
        [*_as_postgres_user(), pg_binary("postgres"), "-D", str(data_dir), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(root), "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
        stdout=log_handle, stderr=subprocess.STDOUT,
    )
    server = PostgresServer("127.0.0.1", port, user, PASSWORD, data_dir, process)
    deadline = time.monotonic() + timeout
    while True:
        ready = subprocess.run(
            [pg_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", user],
            capture_output=True,
        )
        if ready.returncode == 0:
            return server
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text() if log.exists() else ''}")
        time.sleep(0.2)
