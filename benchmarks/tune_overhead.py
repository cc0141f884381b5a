"""Per-trial overhead of `mlci tune` over plain Optuna: same objective, same kind of storage.

The objective is one training command that sleeps --trial-seconds (10 by
default) and reports a loss computed from its parameter. Plain Optuna runs it
with `study.optimize` and a subprocess per trial, reading the loss from its
output; `mlci tune` runs it as a tracked MLflow run per trial (fingerprint,
cache lookup, lineage tags, telemetry, the output logged, pruning watch) and
reads the loss from the run. Both use a fresh study in the same storage kind:
a journal file by default, or the database in --storage (e.g. a PostgreSQL
URL) with a study name of their own.

Process start-up (imports, the one-off MLflow store migration) is left out:
per trial counts the time from one trial's start to the next one's, as the
study records them, median over the trials of each run. Target: mlci's extra
time per trial is at most 5% of a 10 s trial.

    python benchmarks/tune_overhead.py [--trials 5] [--trial-seconds 10] [--storage URL]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGET_FRACTION = 0.05

OBJECTIVE = textwrap.dedent("""\
    import os, sqlite3, sys, time
    x = float(os.environ["MLCI_PARAM_X"])
    time.sleep(float(sys.argv[1]))
    loss = (x - 2) ** 2
    if os.environ.get("MLFLOW_RUN_ID"):  # under mlci tune: log the metric on the trial's run
        path = os.environ["MLFLOW_TRACKING_URI"][len("sqlite:///"):]
        now = int(time.time() * 1000)
        with sqlite3.connect(path, timeout=60) as db:
            db.execute("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                       "VALUES ('loss', ?, ?, ?, 0, 0)", (loss, now, os.environ["MLFLOW_RUN_ID"]))
            db.execute("INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "VALUES ('loss', ?, ?, 0, 0, ?)", (loss, now, os.environ["MLFLOW_RUN_ID"]))
    print(f"loss {loss}")
""")

PLAIN_OPTUNA = textwrap.dedent("""\
    import os, subprocess, sys
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage_arg, study_name, trials, seconds, script = sys.argv[1:6]
    storage = (JournalStorage(JournalFileBackend(storage_arg)) if not "://" in storage_arg
               else optuna.storages.RDBStorage(storage_arg, heartbeat_interval=30, grace_period=120))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=1, constant_liar=True))

    def objective(trial):
        x = trial.suggest_float("x", -4, 6)
        done = subprocess.run([sys.executable, script, seconds], env={**os.environ, "MLCI_PARAM_X": repr(x)},
                              capture_output=True, text=True, check=True)
        return float(done.stdout.split()[-1])

    study.optimize(objective, n_trials=int(trials))
""")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _config(root: Path, trials: int, seconds: float, storage: str | None) -> None:
    storage_line = f"  storage: {storage}\n" if storage else ""
    (root / "mlci.yml").write_text(
        "version: 1\nproject: {name: bench}\n"
        f"train:\n  command: [{sys.executable}, objective.py, '{seconds}']\n  code-paths: [objective.py]\n"
        f"tune:\n  metric: loss\n  direction: minimize\n  n-trials: {trials}\n{storage_line}"
        "  sampler: {name: tpe, seed: 1}\n  pruner: {name: none}\n"
        "  search-space:\n    x: {type: float, low: -4, high: 6}\n"
    )


def _gaps(study) -> list[float]:
    """Seconds from each trial's start to the next one's start."""
    starts = sorted(t.datetime_start for t in study.get_trials() if t.datetime_start is not None)
    return [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]


def _load(storage: str, name: str):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if "://" in storage:
        backend = optuna.storages.RDBStorage(storage.replace("postgresql://", "postgresql+psycopg://"))
    else:
        backend = JournalStorage(JournalFileBackend(storage))
    return optuna.load_study(study_name=name, storage=backend)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per study (at least 3)")
    parser.add_argument("--trial-seconds", type=float, default=10.0, help="seconds one trial's command takes")
    parser.add_argument("--storage", help="database URL for both studies (default: a journal file each)")
    args = parser.parse_args()
    if args.trials < 3:
        parser.error("--trials must be at least 3")
    suffix = str(int(time.time()))
    with tempfile.TemporaryDirectory(prefix="mlci-bench-tune-") as tmp:
        root = Path(tmp)
        (root / "objective.py").write_text(OBJECTIVE)
        (root / "optuna_plain.py").write_text(PLAIN_OPTUNA)
        # The MLflow store's one-off migrations happen here, not in a trial.
        subprocess.run([sys.executable, "-c", "from mlflow import MlflowClient; "
                        "MlflowClient(tracking_uri='sqlite:///.mlci/mlflow.db').search_experiments()"],
                       cwd=root, env=_env(), check=True, capture_output=True)

        plain_storage = args.storage or str(root / "plain.journal")
        plain_name = f"bench-plain-{suffix}"
        subprocess.run([sys.executable, "optuna_plain.py", plain_storage, plain_name, str(args.trials),
                        str(args.trial_seconds), "objective.py"], cwd=root, env=_env(), check=True)

        mlci_name = f"bench-mlci-{suffix}"
        _config(root, args.trials, args.trial_seconds, args.storage)
        if not args.storage:
            with (root / "mlci.yml").open("a") as config:
                config.write(f"  journal-file: {root / 'mlci.journal'}\n")
        done = subprocess.run([sys.executable, "-m", "mlci", "tune", "--study", mlci_name], cwd=root, env=_env(),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"mlci tune failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

        plain = statistics.median(_gaps(_load(plain_storage, plain_name)))
        mlci = statistics.median(_gaps(_load(args.storage or str(root / "mlci.journal"), mlci_name)))
    overhead = mlci - plain
    fraction = overhead / 10.0
    print(f"trial command: {args.trial_seconds:g} s; storage: {'database' if args.storage else 'journal file'}; "
          f"{args.trials} trials each")
    print(f"per trial, start to next start (median): plain Optuna {plain:.2f} s, mlci tune {mlci:.2f} s")
    print(f"mlci overhead per trial: {overhead:.2f} s = {fraction:.1%} of a 10 s trial "
          f"(target <= {TARGET_FRACTION:.0%}); ratio mlci/optuna {mlci / plain:.3f}")
    return 0 if fraction <= TARGET_FRACTION else 1


if __name__ == "__main__":
    sys.exit(main())
