"""A real nginx from Debian's package on 127.0.0.1, with its own prefix, configuration and pid file.

The main configuration includes every `conf.d/*.conf`, where mlci renders
its router; `test_command` and `reload_command` are what mlci.yml's
deploy.canary.router points at. Stopped by PID at teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.servers import stop_process
from tests.servers.prometheus import free_port

MAIN = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/conf.d/*.conf;
}}
"""


def binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; `make tools` installs it)")
    return found


@dataclass
class NginxServer:
    root: Path
    port: int  # what the rendered router listens on
    process: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def include_dir(self) -> Path:
        return self.root / "conf.d"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _base(self) -> list[str]:
        return [binary(), "-p", str(self.root), "-c", str(self.config), "-e", str(self.root / "error.log")]

    @property
    def test_command(self) -> list[str]:
        return [*self._base(), "-t", "-q"]

    @property
    def reload_command(self) -> list[str]:
        return [*self._base(), "-s", "reload"]

    def start(self) -> NginxServer:
        for sub in ("conf.d", "tmp", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config.write_text(MAIN.format(root=self.root, user=user), encoding="utf-8")
        self.process = subprocess.Popen(self._base(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (self.root / "nginx.pid").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT, timeout=15)  # graceful: workers finish their requests
        shutil.rmtree(self.root, ignore_errors=True)


def start_nginx() -> NginxServer:
    return NginxServer(root=Path(tempfile.mkdtemp(prefix="mlci-nginx-")), port=free_port()).start()
