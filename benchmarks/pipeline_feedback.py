"""DAG (`needs:`) against classic stage-by-stage ordering of the example's MR pipeline.

The same pipeline runs twice under gitlab-ci-local: once as generated, with
`needs:` edges, and once rewritten into sequential stages with every `needs:`
removed. Each runs on good data (total time) and on the bad-data variant
(time until the first job fails, i.e. how soon a developer hears about it).
The DAG version must not be slower.

By default the jobs use the mlci of this checkout (MLCI_INSTALL=preinstalled). With
`--bootstrap uv` (or pip) the bad-data runs start every time from an empty virtualenv
and the data check installs mlci itself, as on a fresh runner: the templates' install
step, from a loopback GitLab PyPI registry serving the wheel built from this checkout,
so the time to the first failure includes the bootstrap.

    python benchmarks/pipeline_feedback.py [--rounds 3] [--bootstrap preinstalled|uv|pip]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import REPO_ROOT, Workspace, workspace_with_services
from tests.e2e.scenarios import prepare_data
from tests.fakes.pypi_registry import FakePyPIRegistry

JOB_TOKEN = "glcbt-64_bench-job-token"

DAG_FILE = ".gitlab-ci-dag.yml"
STAGED_FILE = ".gitlab-ci-staged.yml"
# The order a stage-by-stage pipeline would use for the MR jobs.
STAGE_OF = {
    "mlci-data-check": "data",
    "mlci-data-drift": "data",
    "mlci-train": "train",
    "mlci-train-select": "select",
    "mlci-gate": "gate",
    "mlci-report": "report",
}


def write_variants(ws: Workspace, variables: dict[str, str]) -> None:
    """Both shapes as flat files from the same merged pipeline, so include resolution costs neither:
    the DAG as generated, and a staged copy with `needs:` removed and one stage per step."""
    merged = ws.preview(variables)
    dag = {"stages": merged.get("stages", ["test", "deploy"])}
    staged = {"stages": ["data", "train", "select", "gate", "report", "deploy"]}
    for name, job in merged.items():
        if not isinstance(job, dict) or name.startswith(".") or "script" not in job:
            continue
        dag[name] = job
        job = dict(job)
        job.pop("needs", None)
        job["stage"] = STAGE_OF.get(name, "deploy")
        staged[name] = job
    (ws.root / DAG_FILE).write_text(yaml.safe_dump(dag, sort_keys=False))
    (ws.root / STAGED_FILE).write_text(yaml.safe_dump(staged, sort_keys=False))


@contextlib.contextmanager
def bootstrap_from_registry(mode: str):
    """A loopback PyPI registry with this checkout's wheel, and a factory of empty runner virtualenvs."""
    scratch = Path(tempfile.mkdtemp(prefix="mlci-bench-bootstrap-"))
    try:
        subprocess.run(["uv", "build", "-q", "--wheel", "-o", str(scratch / "dist"), str(REPO_ROOT)], check=True)
        with FakePyPIRegistry(projects={"77": "mlci/mlci"}, job_tokens=(JOB_TOKEN,)) as registry:
            for wheel in (scratch / "dist").glob("*.whl"):
                registry.add_file("mlci/mlci", wheel)

            def fresh_runner() -> dict[str, str]:
                venv = scratch / "runner"
                shutil.rmtree(venv, ignore_errors=True)
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                uv_dir = Path(sys.executable).parent  # uv of the dev extra, not a version manager's shim
                return {"MLCI_INSTALL": mode, "CI_SERVER_PROTOCOL": "http", "CI_SERVER_FQDN": registry.server_fqdn,
                        "CI_JOB_TOKEN": JOB_TOKEN, "PATH": f"{venv / 'bin'}:{uv_dir}:/usr/local/bin:/usr/bin:/bin"}

            yield fresh_runner
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(label: str, *, bad_data: bool, rounds: int, bootstrap: str = "preinstalled") -> dict[str, list[float]]:
    """Alternate the two shapes round by round in one workspace, so drift in machine load hits both."""
    results: dict[str, list[float]] = {"dag_total": [], "staged_total": [], "dag_first": [], "staged_first": []}
    runner = bootstrap_from_registry(bootstrap) if bootstrap != "preinstalled" else contextlib.nullcontext(dict)
    # the good-data runs train the example model, which needs the user's image (scikit-learn, MLflow):
    # they keep the mlci of this checkout
    with runner as fresh_runner, workspace_with_services(fake_gitlab=True) as ws:
        iid = ws.open_merge_request("feature/bench", "bench")
        mr_vars = ws.merge_request_variables(iid, "feature/bench")
        if bad_data:
            prepare_data(ws, "bad")
        write_variants(ws, mr_vars)
        ws.commit("bench")
        for round_no in range(rounds):
            order = [("dag", DAG_FILE), ("staged", STAGED_FILE)]
            for shape, file in order if round_no % 2 == 0 else reversed(order):
                # A fresh MLflow store per run, so the run cache never favours the later run.
                for path in (ws.root / ".mlci").glob("mlflow.db*"):
                    path.unlink()
                run = ws.run_pipeline(f"{label}-{shape}-{round_no}", {**mr_vars, **fresh_runner()}, file=file)
                results[f"{shape}_total"].append(run.seconds)
                if run.first_failure_seconds is not None:
                    results[f"{shape}_first"].append(run.first_failure_seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap", choices=["preinstalled", "uv", "pip"], default="preinstalled",
                        help="how the bad-data runs get mlci: already on PATH, or installed by the data check job")
    args = parser.parse_args()
    good = measure("good", bad_data=False, rounds=args.rounds)
    bad = measure("bad", bad_data=True, rounds=args.rounds, bootstrap=args.bootstrap)
    print(f"example MR pipeline under gitlab-ci-local (shell executor), median of {args.rounds} alternating runs; "
          f"bad-data runs bootstrap: {args.bootstrap}")
    print(f"{'':34}{'DAG (needs)':>12}{'stage by stage':>16}{'ratio':>8}")
    rows = [
        ("total time, good data (s)", good["dag_total"], good["staged_total"]),
        ("first failure, bad data (s)", bad["dag_first"], bad["staged_first"]),
        ("total time, bad data (s)", bad["dag_total"], bad["staged_total"]),
    ]
    ok = True
    for name, dag_runs, staged_runs in rows:
        dag, staged = statistics.median(dag_runs), statistics.median(staged_runs)
        print(f"{name:34}{dag:12.2f}{staged:16.2f}{dag / staged:8.2f}")
        # Sub-second differences are process-start noise; judge with a small allowance.
        ok = ok and dag <= staged * 1.05 + 0.25
    print("DAG not slower:", "OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
