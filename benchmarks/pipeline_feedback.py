"""DAG (`needs:`) against classic stage-by-stage ordering of the example's MR pipeline.

The same pipeline runs twice under gitlab-ci-local: once as generated, with
`needs:` edges, and once rewritten into sequential stages with every `needs:`
removed. Each runs on good data (total time) and on the bad-data variant
(time until the first job fails, i.e. how soon a developer hears about it).
The DAG version must not be slower.

    python benchmarks/pipeline_feedback.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import GCL, Workspace, workspace_with_services
from tests.e2e.scenarios import prepare_data

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


def write_staged_variant(ws: Workspace, variables: dict[str, str]) -> None:
    """The merged pipeline with `needs:` removed and one stage per step."""
    args = [str(GCL), "--cwd", ".", "--preview", "--force-shell-executor"]
    for key, value in {**ws.base_variables(), **variables}.items():
        args += ["--variable", f"{key}={value}"]
    merged = yaml.safe_load(subprocess.run(args, cwd=ws.root, check=True, capture_output=True, text=True).stdout)
    staged = {"stages": ["data", "train", "select", "gate", "report", "deploy"]}
    for name, job in merged.items():
        if not isinstance(job, dict) or name.startswith(".") or "script" not in job:
            continue
        job = dict(job)
        job.pop("needs", None)
        job["stage"] = STAGE_OF.get(name, "deploy")
        staged[name] = job
    (ws.root / STAGED_FILE).write_text(yaml.safe_dump(staged, sort_keys=False))


def measure(label: str, variables: dict[str, str], *, bad_data: bool) -> dict[str, float]:
    results = {}
    with workspace_with_services(fake_gitlab=True) as ws:
        iid = ws.open_merge_request("feature/bench", "bench")
        mr_vars = {**ws.merge_request_variables(iid, "feature/bench"), **variables}
        if bad_data:
            prepare_data(ws, "bad")
        write_staged_variant(ws, mr_vars)
        ws.commit("bench")
        for shape, file in (("dag", None), ("staged", STAGED_FILE)):
            run = ws.run_pipeline(f"{label}-{shape}", mr_vars, file=file)
            results[f"{shape}_total"] = run.seconds
            results[f"{shape}_first_failure"] = run.first_failure_seconds or float("nan")
            # Reset MLflow state between shapes, so the run cache can't favour the second run.
            for path in (ws.root / ".mlci").glob("mlflow.db*"):
                path.unlink()
    return results


def main() -> int:
    good = measure("good", {}, bad_data=False)
    bad = measure("bad", {}, bad_data=True)
    print("example MR pipeline under gitlab-ci-local (shell executor)")
    print(f"{'':32}{'DAG (needs)':>14}{'stage by stage':>16}{'ratio':>8}")
    rows = [
        ("total time, good data (s)", good["dag_total"], good["staged_total"]),
        ("first failure, bad data (s)", bad["dag_first_failure"], bad["staged_first_failure"]),
        ("total time, bad data (s)", bad["dag_total"], bad["staged_total"]),
    ]
    for name, dag, staged in rows:
        print(f"{name:32}{dag:14.1f}{staged:16.1f}{dag / staged:8.2f}")
    ok = good["dag_total"] <= good["staged_total"] * 1.05 and bad["dag_total"] <= bad["staged_total"] * 1.05
    print("DAG not slower:", "OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
