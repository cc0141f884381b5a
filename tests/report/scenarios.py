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



def verdict(rule, status, *, severity="error", observed=None, threshold=None, champion=None, reason="",
            kind="absolute", checks=()):
    """One rule verdict as `mlci gate` writes it into gate.json."""
    return {
        "rule": rule, "kind": kind, "subject": rule.split()[0], "status": status, "severity": severity,
        "blocking": status == "failed" and severity == "error", "reason": reason, "observed": observed,
        "threshold": threshold, "champion": champion, "comparison": "", "missing": False, "checks": list(checks),
    }


def gate(status, verdicts, *, registered=None, cold_start=False):
    return {
        "version": 1, "status": status, "passed": status == "passed", "warn_only": False, "model": "churn",
        "registered_version": registered, "registry_mode": "alias", "cold_start": cold_start,
        "on_no_champion": "absolute-only",
        "summary": {"passed": 0, "failed": 0, "skipped": 0, "blocking": 0, "warnings": 0},
        "candidate": {"run_id": CANDIDATE.run_id, "version": None, "metrics": dict(CANDIDATE.metrics)},
        "champion": None if cold_start else {"run_id": CHAMPION.run_id, "version": "3", "metrics": {}},
        "verdicts": verdicts,
    }


GATE_PASSED = gate("passed", [
    verdict("accuracy >= 0.9", "passed", observed=0.9312, threshold=0.9, reason="0.9312 >= 0.9"),
    verdict("val_loss not worse than champion by 5%", "passed", kind="relative", observed=0.2104, champion=0.2511,
            reason="0.2104 vs champion 0.2511"),
    verdict("accuracy_slice_* >= 0.8", "passed", reason="2 slices", checks=[
        {"metric": "accuracy_slice_eu", "status": "passed", "observed": 0.91, "threshold": 0.8, "champion": None,
         "note": ""},
        {"metric": "accuracy_slice_us", "status": "passed", "observed": 0.88, "threshold": 0.8, "champion": None,
         "note": ""},
    ]),
    verdict("latency_p95_ms <= 20", "passed", severity="warn", kind="budget-absolute", observed=12.5, threshold=20),
], registered="4")
GATE_FAILED = gate("failed", [
    verdict("accuracy >= 0.95", "failed", observed=0.9312, threshold=0.95, reason="0.9312 is below 0.95"),
    verdict("val_loss not worse than champion by 5%", "passed", kind="relative", observed=0.2104, champion=0.2511),
    verdict("latency_p95_ms <= 10", "failed", severity="warn", kind="budget-absolute", observed=12.5, threshold=10,
            reason="12.5 ms is over the 10 ms budget"),
])
GATE_COLD_START = gate("passed", [
    verdict("accuracy >= 0.9", "passed", observed=0.9312, threshold=0.9),
    verdict("val_loss not worse than champion by 5%", "skipped", kind="relative",
            reason="no champion (on-no-champion: absolute-only)"),
], registered="1", cold_start=True)


def data_rule(name, status="passed", *, severity="error", failing_rows=None, fraction=None, examples=()):
    """One rule result as `mlci data check` writes it into data-check.json."""
    outcome = "warning" if status == "failed" and severity == "warn" else status
    return {
        "name": name, "kind": "range", "column": name.split()[0], "severity": severity, "status": status,
        "outcome": outcome, "failing_rows": failing_rows, "failing_fraction": fraction, "observed": None,
        "message": "", "examples": [{"row": r, "value": v} for r, v in examples],
    }


DATA_CHECK = {
    "version": 1,
    "status": "passed",
    "summary": {"files": 1, "rules": 3, "passed": 2, "failed": 0, "warnings": 1, "skipped": 0},
    "files": [
        {"path": "data/train.parquet", "source": "train", "format": "parquet", "rows": 2000, "seconds": 0.04,
         "note": "", "rules": [
             data_rule("age not null"),
             data_rule("age between 0 and 120", "failed", severity="warn", failing_rows=3, fraction=0.0015,
                       examples=[(17, -1), (404, 130), (1999, 200)]),
             data_rule("row count >= 1000"),
         ]},
    ],
}


def drift_column(column, kind, drift, *, reasons=(), **stats):
    """One column as `mlci data drift` writes it into drift.json."""
    base = {"column": column, "kind": kind, "status": "drift" if drift else "ok", "drift": drift,
            "reasons": list(reasons), "note": "", "psi": None, "ks_statistic": None, "ks_pvalue": None,
            "chi2_statistic": None, "chi2_pvalue": None, "unseen_fraction": None, "unseen_examples": [],
            "reference_rows": 2000, "current_rows": 1800, "thresholds": None, "bins": None, "plot": None}
    return {**base, **stats}


DRIFT = {
    "version": 1,
    "drift": True,
    "drifting_columns": ["tenure"],
    "reference": {"label": "data/reference.parquet", "available": True, "reason": ""},
    "notes": [],
    "datasets": [{
        "current": "data/train.parquet", "reference": "data/reference.parquet", "reference_rows": 2000,
        "current_rows": 1800, "sampled": False, "drift": True, "notes": [],
        "columns": [
            drift_column("tenure", "numeric", True, reasons=["PSI 0.31 > 0.2"], psi=0.31, ks_statistic=0.18,
                         ks_pvalue=0.0001),
            drift_column("plan", "categorical", False, psi=0.01, unseen_fraction=0.0),
        ],
    }],
}
TRAIN = {
    "version": 1,
    "run_id": CANDIDATE.run_id,
    "experiment_id": "7",
    "experiment": "ml/churn",
    "tracking_uri": "https://user:secret@mlflow.example.com",
    "model_uri": f"runs:/{CANDIDATE.run_id}/model",
    "status": "FINISHED",
    "exit_code": 0,
    "killed_reason": None,
    "duration_seconds": 312.4,
    "fingerprint": "f" * 64,
    "cache_hit": False,
    "reused_from": None,
    "command": "python train.py",
    "params": {"max_depth": 8},
    "data": [{"path": "data/train.parquet", "sha256": "9f" * 32, "size_bytes": 1024, "rows": 2000}],
    "telemetry": {
        "samples": 62, "interval_seconds": 5.0,
        "cpu": {"peak_percent": 99.5, "mean_percent": 87.2},
        "memory": {"peak_used_mb": 4120.0, "peak_percent": 51.5, "peak_process_rss_mb": 1530.2},
        "gpu": {"available": False, "reason": "NVML not available (no NVIDIA driver)"},
    },
    "warnings": [],
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
