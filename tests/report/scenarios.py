"""Fixed report inputs shared by the golden and renderer tests (no MLflow, no network)."""

from __future__ import annotations

from mlci.adapters.ci_env import CiEnv
from mlci.report.build import ReportInputs, ReportOptions, RunData

UI = "https://mlflow.example.com"

MR_CI = CiEnv(
    server_url="https://gitlab.example.com/gitlab",
    project_url="https://gitlab.example.com/gitlab/ml/churn",
    commit_sha="0123456789abcdef0123456789abcdef01234567",
    commit_ref="feature/deeper-trees",
    pipeline_id="881",
    pipeline_url="https://gitlab.example.com/gitlab/ml/churn/-/pipelines/881",
    job_id="4521",
    job_url="https://gitlab.example.com/gitlab/ml/churn/-/jobs/4521",
    mr_iid="17",
    mr_target_branch="main",
    mr_source_branch="feature/deeper-trees",
)

CANDIDATE = RunData(
    run_id="c0ffee00" + "1" * 24,
    name="bright-owl-42",
    experiment_id="7",
    metrics={"accuracy": 0.9312, "f1": 0.9, "val_loss": 0.2104, "latency_p95_ms": 12.5, "system/cpu": 80.0},
    params={"max_depth": "8", "n_estimators": "200", "seed": "1", "class_weight": "balanced"},
    tags={"mlci.gitlab.ref": "feature/deeper-trees"},
)
CHAMPION = RunData(
    run_id="beef0000" + "2" * 24,
    name="calm-fox-7",
    experiment_id="7",
    metrics={"accuracy": 0.9105, "f1": 0.9, "val_loss": 0.2511, "latency_p95_ms": 10.0, "roc_auc": 0.95},
    params={"max_depth": "6", "n_estimators": "200", "seed": "1"},
)
TARGET = RunData(
    run_id="feed0000" + "3" * 24,
    name="main-run",
    experiment_id="7",
    metrics={"accuracy": 0.9201, "f1": 0.91, "val_loss": 0.2, "latency_p95_ms": 12.5},
    params={"max_depth": "6", "n_estimators": "250", "seed": "1"},
    tags={"mlci.gitlab.ref": "main", "mlci.gitlab.commit": "fedcba9876543210"},
)

GATE_PASSED = {
    "version": 1,
    "status": "passed",
    "model": "churn",
    "model_version": "4",
    "run_id": CANDIDATE.run_id,
    "rules": [
        {"name": "accuracy >= 0.9", "status": "passed", "severity": "error", "candidate": 0.9312, "threshold": 0.9},
        {"name": "val_loss not worse than champion by 5%", "status": "passed", "severity": "error",
         "candidate": 0.2104, "champion": 0.2511},
        {"name": "latency_p95_ms <= 20", "status": "passed", "severity": "warn", "candidate": 12.5, "threshold": 20},
    ],
}
GATE_FAILED = {
    "version": 1,
    "status": "failed",
    "model": "churn",
    "run_id": CANDIDATE.run_id,
    "rules": [
        {"name": "accuracy >= 0.95", "status": "failed", "severity": "error", "candidate": 0.9312, "threshold": 0.95,
         "message": "0.9312 is below 0.95"},
        {"name": "val_loss not worse than champion by 5%", "status": "passed", "severity": "error",
         "candidate": 0.2104, "champion": 0.2511},
        {"name": "latency_p95_ms <= 10", "status": "failed", "severity": "warn", "candidate": 12.5, "threshold": 10,
         "message": "12.5 ms is over the 10 ms budget"},
    ],
}
GATE_COLD_START = {
    "version": 1,
    "status": "passed",
    "model": "churn",
    "model_version": "1",
    "on_no_champion": "absolute-only",
    "champion": None,
    "rules": [
        {"name": "accuracy >= 0.9", "status": "passed", "severity": "error", "candidate": 0.9312, "threshold": 0.9},
        {"name": "val_loss not worse than champion by 5%", "status": "skipped", "severity": "error",
         "message": "no champion (on-no-champion: absolute-only)"},
    ],
}
DATA_CHECK = {
    "version": 1,
    "status": "passed",
    "files": [
        {"path": "data/train.parquet", "rules": [
            {"name": "age not null", "status": "passed", "severity": "error"},
            {"name": "age between 0 and 120", "status": "failed", "severity": "warn", "failing_rows": 3,
             "failing_fraction": 0.0015, "examples": [-1, 130, 200]},
            {"name": "row count >= 1000", "status": "passed", "severity": "error"},
        ]},
    ],
}
DRIFT = {
    "version": 1,
    "drift": True,
    "columns": [
        {"column": "tenure", "method": "psi", "psi": 0.31, "drift": True},
        {"column": "plan", "method": "chi2", "p_value": 0.42, "drift": False},
    ],
}
TRAIN = {
    "version": 1,
    "run_id": CANDIDATE.run_id,
    "duration_s": 312.4,
    "cache_hit": False,
    "telemetry": {"gpu": "none", "cpu_percent_mean": 87.2, "peak_rss_mb": 1530},
}

OPTIONS = ReportOptions(mlflow_ui_url=UI)


def with_champion() -> ReportInputs:
    return ReportInputs(
        model_name="churn", ci=MR_CI, candidate=CANDIDATE, champion=CHAMPION, champion_version="3", target=TARGET,
        model_version="4", gate=GATE_PASSED, data_check=DATA_CHECK, drift=DRIFT, train=TRAIN,
    )


def without_champion() -> ReportInputs:
    return ReportInputs(
        model_name="churn", ci=MR_CI, candidate=CANDIDATE, target=TARGET, model_version="1", gate=GATE_COLD_START,
    )


def gate_failed() -> ReportInputs:
    return ReportInputs(
        model_name="churn", ci=MR_CI, candidate=CANDIDATE, champion=CHAMPION, champion_version="3", target=None,
        gate=GATE_FAILED,
    )
