#!/usr/bin/env python3
"""Guards of an mlci GPU runner host (standard library only; run by systemd timers).

  reap --max-lifetime SECONDS
      Remove job containers (label com.gitlab.gitlab-runner.managed=true) that have run longer than
      the pool's max job lifetime, even when the runner that started them is gone.
  idle --idle-timeout SECONDS --state FILE
      Power the host off when it has run no job for SECONDS. Busy means a job container exists or the
      runner's metrics (listen_address) report a running job, which covers image pulls before any
      container starts. FILE remembers when the host was last busy; a fresh boot counts as busy.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

JOB_LABEL = "com.gitlab.gitlab-runner.managed=true"
METRICS_URL = "http://127.0.0.1:9252/metrics"
_RUNNING_JOBS = re.compile(r"^gitlab_runner_jobs\{[^}]*\}\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def job_containers() -> list[str]:
    return docker("ps", "--quiet", "--filter", f"label={JOB_LABEL}").split()


def started_at(container: str) -> datetime:
    text = docker("inspect", "--format", "{{.State.StartedAt}}", container).strip()
    # Docker prints nanoseconds (2024-05-01T10:00:00.123456789Z); Python parses microseconds.
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text)


def running_jobs_from_metrics(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode("utf-8", "replace")
    except OSError:
        return None
    return sum(float(value) for value in _RUNNING_JOBS.findall(body))


def reap(max_lifetime: int, now: datetime) -> int:
    removed = 0
    for container in job_containers():
        age = (now - started_at(container)).total_seconds()
        if age > max_lifetime:
            print(f"removing job container {container}: running {int(age)} s, limit {max_lifetime} s", flush=True)
            docker("rm", "--force", container)
            removed += 1
    return removed


def idle(idle_timeout: int, state: str, now: float, metrics_url: str, poweroff: list[str]) -> bool:
    """True when the host was powered off."""
    busy = bool(job_containers()) or (running_jobs_from_metrics(metrics_url) or 0) > 0
    if busy or not os.path.exists(state):
        os.makedirs(os.path.dirname(state) or ".", exist_ok=True)
        with open(state, "w", encoding="utf-8") as handle:
            handle.write(f"{now:.0f}\n")
        os.utime(state, (now, now))
        return False
    idle_for = now - os.path.getmtime(state)
    if idle_for < idle_timeout:
        return False
    print(f"no job for {int(idle_for)} s (limit {idle_timeout} s): powering off", flush=True)
    subprocess.run(poweroff, check=True, timeout=60)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlci-runner-guard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    reaper = sub.add_parser("reap")
    reaper.add_argument("--max-lifetime", type=int, required=True)
    idler = sub.add_parser("idle")
    idler.add_argument("--idle-timeout", type=int, required=True)
    idler.add_argument("--state", required=True)
    idler.add_argument("--metrics-url", default=METRICS_URL)
    idler.add_argument("--poweroff-command", default="systemctl poweroff")
    args = parser.parse_args(argv)
    if args.action == "reap":
        reap(args.max_lifetime, datetime.now(timezone.utc))
    else:
        idle(args.idle_timeout, args.state, time.time(), args.metrics_url, args.poweroff_command.split())
    return 0


if __name__ == "__main__":
    sys.exit(main())
