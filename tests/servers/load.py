"""A bounded load generator: a fixed request rate, a hard cap on requests and time, in a background thread.

It posts MLflow scoring payloads to a model server's /invocations, and can
keep an inference log (NDJSON: the features sent and the prediction received,
one line per row), the way a gateway in front of a deployment would.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


@dataclass
class LoadGenerator:
    url: str  # the server root; requests go to {url}/invocations
    rows: list[dict]  # feature rows to send, cycled
    rate: float = 20.0  # requests per second, per worker
    batch: int = 1
    concurrency: int = 1  # workers sending at the same time (a slow model is still loaded)
    max_requests: int = 5000
    max_seconds: float = 300.0
    log_path: Path | None = None
    sent: int = 0
    ok: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _index: int = 0

    def start(self) -> LoadGenerator:
        log = self.log_path.open("a", encoding="utf-8") if self.log_path else None
        self._threads = [threading.Thread(target=self._run, args=(log,), daemon=True)
                         for _ in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        if log is not None:
            threading.Thread(target=self._close_when_done, args=(log,), daemon=True).start()
        return self

    def _close_when_done(self, log) -> None:
        for thread in self._threads:
            thread.join()
        log.close()

    def _next(self) -> list[dict] | None:
        with self._lock:
            if self.sent >= self.max_requests:
                return None
            self.sent += 1
            chunk = [self.rows[(self._index + i) % len(self.rows)] for i in range(self.batch)]
            self._index += self.batch
            return chunk

    def _run(self, log) -> None:
        session = requests.Session()
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started <= self.max_seconds:
            chunk = self._next()
            if chunk is None:
                break
            columns = list(chunk[0])
            payload = {"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns] for row in chunk]}}
            try:
                response = session.post(f"{self.url}/invocations", json=payload, timeout=10)
                if response.status_code == 200:
                    lines = []
                    if log is not None:
                        predictions = response.json().get("predictions", [])
                        lines = [json.dumps({**row, "prediction": prediction}) + "\n"
                                 for row, prediction in zip(chunk, predictions, strict=False)]
                    with self._lock:
                        self.ok += 1
                        if lines:
                            log.writelines(lines)
                else:
                    with self._lock:
                        self.failed += 1
            except requests.RequestException:
                with self._lock:
                    self.failed += 1
            self._stop.wait(1.0 / self.rate)

    def run_for(self, seconds: float) -> LoadGenerator:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def wait(self, timeout: float = 120) -> LoadGenerator:
        """Until the request cap or the time cap is reached."""
        for thread in self._threads:
            thread.join(timeout=timeout)
        return self

    def stop(self) -> LoadGenerator:
        self._stop.set()
        return self.wait(timeout=15)
