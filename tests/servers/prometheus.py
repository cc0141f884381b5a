"""A real Prometheus from Debian's package, on 127.0.0.1 and a free port, with a temporary TSDB.

- Scrape targets come from file-based service discovery: `watch(dir)` adds a
  folder of file_sd JSON files (mlci's mlserver target writes one per
  environment) and reloads the configuration through /-/reload.
- Long windows are not waited for: `backfill(openmetrics)` turns deterministic
  series into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`.
  Prometheus only loads blocks at start, so `start_prometheus(backfill=...)`
  writes them before the server starts; a running server restarts on the same
  TSDB and port (`restart_with_backfill`).
- The server is stopped by PID and its folder removed at teardown.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.servers import stop_process

SCRAPE_INTERVAL = "1s"


def binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install prometheus)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrometheusServer:
    root: Path
    port: int
    process: subprocess.Popen | None = None
    watched: list[Path] = field(default_factory=list)
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_path(self) -> Path:
        return self.root / "prometheus.yml"

    def write_config(self) -> None:
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [{
                "job_name": "mlci-models",
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "file_sd_configs": [{"files": [str(path / "*.json") for path in self.watched] or
                                     [str(self.root / "no-targets" / "*.json")], "refresh_interval": "1s"}],
            }],
        }
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        self.write_config()
        self.log = self.root / "prometheus.log"
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [binary("prometheus"), f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
             "--storage.tsdb.retention.time=30d", "--log.level=warn"],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text(errors="replace")[-3000:]
                self.stop(remove=False)
                raise RuntimeError(f"Prometheus did not start:\n{text}")
            time.sleep(0.1)

    def reload(self) -> None:
        self.write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def watch(self, targets_dir: Path) -> None:
        """Scrape every file_sd target file that appears in `targets_dir`."""
        targets_dir = Path(targets_dir)
        targets_dir.mkdir(parents=True, exist_ok=True)
        if targets_dir not in self.watched:
            self.watched.append(targets_dir)
            self.reload()

    def stop(self, *, remove: bool = True) -> None:
        stop_process(self.process, signal.SIGTERM, timeout=20)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart_with_backfill(self, openmetrics: str) -> None:
        self.stop(remove=False)
        backfill(openmetrics, self.data_dir)
        self.start()


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write `openmetrics` (ending in `# EOF`, timestamps in seconds) as TSDB blocks into `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlci-backfill-") as scratch:
        source = Path(scratch) / "series.om"
        text = openmetrics if openmetrics.rstrip().endswith("# EOF") else openmetrics.rstrip() + "\n# EOF\n"
        source.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"promtool backfill failed:\n{done.stdout}\n{done.stderr}")


def start_prometheus(*, backfill_text: str | None = None) -> PrometheusServer:
    server = PrometheusServer(root=Path(tempfile.mkdtemp(prefix="mlci-prom-")), port=free_port())
    if backfill_text:
        backfill(backfill_text, server.data_dir)
    return server.start()


def openmetrics_counter(name: str, labels: dict[str, str], points: list[tuple[float, float]],
                        *, kind: str = "counter") -> str:
    """OpenMetrics lines for one series (counters get the _total suffix in the family name's samples)."""
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return "".join(f"{name}{{{label_text}}} {value} {timestamp:.3f}\n" for timestamp, value in points)


def check_rules(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
