"""A real S3 API on 127.0.0.1: moto's server mode, on a free port, stopped by PID.

The server writes one access-log line per request, so a test can prove what
was (not) downloaded. Credentials are fake but distinctive, so a test can grep
every output for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers import stop_process
from tests.servers.postgres import free_port

ACCESS_KEY = "AKIAMLCITESTKEY00001"
SECRET_KEY = "mlci-s3-SECRET-never-print-1234"
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    log_path: Path

    def env(self) -> dict[str, str]:
        """What a CI job would set: the standard AWS variables, nothing mlci-specific."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",  # object_store (polars, delta-rs, obstore) refuses plain http otherwise
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",  # delta-rs writes without a lock (test setup only)
        }

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def requests(self) -> list[str]:
        """Access-log lines ("GET /bucket/key ...") since the server started."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if '"' in line and "HTTP/1" in line]

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, timeout=10)


def start_s3(timeout: float = 60.0) -> S3Server:
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="mlci-moto-")) / "server.log"
    log = log_path.open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    server = S3Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=2):
                return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"moto did not start:\n{log_path.read_text(errors='replace')}") from None
            time.sleep(0.2)
