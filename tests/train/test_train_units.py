"""Pure parts of training: params and tags, telemetry, the idle detector, selection, runtime guard."""

from __future__ import annotations

import json
import math

import pytest

from mlci.adapters.ci_env import read_ci_env
from mlci.adapters.mlflow_tracking import resolve_target
from mlci.errors import UsageError
from mlci.train.fingerprint import DataFile
from mlci.train.lineage import child_environment, data_tags, effective_params, matrix_params, run_tags
from mlci.train.select import Candidate, goal_from_directions, select_best
from mlci.train.settings import runtime_guard
from mlci.train.supervisor import GUARD_EXIT_CODE, classify_exit
from mlci.train.telemetry import (
    GpuDevice,
    GpuReading,
    IdleGpuDetector,
    Sample,
    gpu_tag,
    open_nvml,
    sample_metrics,
    summarize,
)


def test_matrix_params_come_from_the_prefix_and_the_listed_variables():
    env = {"MLCI_PARAM_LR": "0.1", "MLCI_PARAM_": "ignored", "DEPTH": "4", "HOME": "/root", "UNLISTED": "x"}
    assert matrix_params(env, ["DEPTH", "NOT_SET"]) == {"lr": "0.1", "DEPTH": "4"}
    # A sweep overrides what mlci.yml fixes.
    assert effective_params({"lr": 0.5, "epochs": 3}, env, []) == {"lr": "0.1", "epochs": 3}


def test_run_tags_carry_gitlab_lineage_fingerprint_and_data():
    ci = read_ci_env({"CI_JOB_ID": "12", "CI_PIPELINE_ID": "3", "CI_PROJECT_PATH": "g/p", "CI_COMMIT_SHA": "abc"})
    tags = run_tags(ci_tags=ci.lineage_tags(), fingerprint="f" * 64, command=["python", "train.py", "--x", "a b"],
                    image="img:1", data=[DataFile("d/x.csv", "s" * 64, 5, 1)], code_mode="git", user="alice")
    assert tags["gitlab.CI_JOB_ID"] == "12"
    assert tags["mlci.gitlab.pipeline_id"] == "3"
    assert tags["mlci.fingerprint"] == "f" * 64
    assert tags["mlci.command"] == "python train.py --x 'a b'"
    assert tags["mlflow.source.type"] == "JOB"
    assert tags["mlflow.user"] == "alice"
    assert tags["mlci.data.d/x.csv.rows"] == "1"
    assert json.loads(tags["mlci.data"]) == [{"path": "d/x.csv", "sha256": "s" * 64, "size_bytes": 5, "rows": 1}]


def test_data_tag_keys_are_made_safe_for_mlflow():
    tags = data_tags([DataFile("data/q1 [final]#2.csv", "0" * 64, 1, None)])
    assert "mlci.data.data/q1 _final__2.csv.sha256" in tags
    assert "mlci.data.data/q1 _final__2.csv.rows" not in tags  # unknown row count is not invented


def test_child_environment_points_the_command_at_our_run():
    env = child_environment({"PATH": "/bin", "PYTHONUNBUFFERED": "0"}, run_id="r1", experiment_id="7",
                            tracking_uri="sqlite:////abs/m.db", params={"lr": 0.1}, registry_uri="sqlite:////r.db")
    assert env["MLFLOW_RUN_ID"] == "r1" and env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:////abs/m.db"
    assert env["MLFLOW_REGISTRY_URI"] == "sqlite:////r.db"
    assert json.loads(env["MLCI_PARAMS_JSON"]) == {"lr": 0.1}
    assert env["PYTHONUNBUFFERED"] == "0"  # the user's choice wins
    assert env["PATH"] == "/bin"


def test_tracking_targets_make_sqlite_absolute_and_hide_credentials(tmp_path):
    target = resolve_target("sqlite:///.mlci/mlflow.db", tmp_path)
    assert target.kind == "sqlite"
    assert target.db_path == tmp_path / ".mlci" / "mlflow.db"
    assert target.child_uri == f"sqlite:///{tmp_path}/.mlci/mlflow.db"
    assert resolve_target("sqlite:////var/m.db").child_uri == "sqlite:////var/m.db"
    web = resolve_target("https://bob:s3cret@mlflow.example.com:8443/prefix/")
    assert web.kind == "http" and web.base_url == "https://mlflow.example.com:8443/prefix"
    assert "s3cret" not in web.display
    assert resolve_target("databricks").kind == "other"
    with pytest.raises(UsageError, match="not a sqlite file"):
        resolve_target("sqlite://")


class FakeNvml:
    """Just the pynvml calls mlci makes, for the probe's unit tests."""

    class NVMLError(Exception):
        pass

    def __init__(self, utils, fail_init=False, count=1):
        self.utils, self.fail_init, self.count, self.shutdowns = list(utils), fail_init, count, 0

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"Fake A100"  # old nvidia-ml-py versions return bytes

    def nvmlDeviceGetMemoryInfo(self, handle):
        return type("Mem", (), {"total": 8192 * 1024 * 1024, "used": 2048 * 1024 * 1024})()

    def nvmlDeviceGetUtilizationRates(self, handle):
        return type("Rates", (), {"gpu": self.utils.pop(0), "memory": 0})()


def test_nvml_probe_reads_devices_and_samples():
    nvml = FakeNvml([30, 70], count=2)
    probe, reason = open_nvml(nvml)
    assert reason is None
    assert probe.devices == [GpuDevice(0, "Fake A100", 8192.0), GpuDevice(1, "Fake A100", 8192.0)]
    readings = probe.read()
    assert [r.utilization_percent for r in readings] == [30.0, 70.0]
    assert readings[0].memory_percent == 25.0
    assert gpu_tag(probe.devices) == "2x Fake A100"
    probe.close()
    assert nvml.shutdowns == 1


@pytest.mark.parametrize("nvml,reason", [
    (FakeNvml([], fail_init=True), "NVML did not initialise (NVML Shared Library Not Found)"),
    (FakeNvml([], count=0), "NVML found no GPUs"),
])
def test_nvml_problems_mean_no_gpu_with_a_reason(nvml, reason):
    assert open_nvml(nvml) == (None, reason)
    assert gpu_tag([]) == "none"


def sample(t: float, cpu: float, gpu_utils=()) -> Sample:
    gpus = tuple(GpuReading(i, u, 1000.0 + u, 4000.0) for i, u in enumerate(gpu_utils))
    return Sample(t, int(t * 1000), cpu, 500.0 + cpu, cpu / 2, 100.0 + cpu, gpus)


def test_sample_metric_names_and_summary_peaks():
    samples = [sample(0, 10, (5, 50)), sample(1, 90, (95, 20)), sample(2, 20, (0, 0))]
    assert sample_metrics(samples[1]) == {
        "system/cpu_utilization_percent": 90,
        "system/memory_used_megabytes": 590.0,
        "system/memory_percent": 45.0,
        "system/process_rss_megabytes": 190.0,
        "system/gpu_0_utilization_percent": 95,
        "system/gpu_0_memory_used_megabytes": 1095.0,
        "system/gpu_0_memory_percent": pytest.approx(27.375),
        "system/gpu_1_utilization_percent": 20,
        "system/gpu_1_memory_used_megabytes": 1020.0,
        "system/gpu_1_memory_percent": 25.5,
    }
    summary = summarize(samples, [GpuDevice(0, "A", 4000.0), GpuDevice(1, "A", 4000.0)], interval=1.0,
                        gpu_unavailable_reason=None)
    assert summary["samples"] == 3
    assert summary["cpu"] == {"peak_percent": 90, "mean_percent": 40.0}
    assert summary["memory"]["peak_process_rss_mb"] == 190.0
    assert summary["gpu"]["peak_utilization_percent"] == 95
    assert summary["gpu"]["mean_utilization_percent"] == pytest.approx(28.33, abs=0.01)
    assert summary["gpu"]["peak_memory_used_mb"] == 1095.0
    empty = summarize([], [], interval=5.0, gpu_unavailable_reason="NVML not installed")
    assert empty["cpu"]["peak_percent"] is None
    assert empty["gpu"] == {"available": False, "reason": "NVML not installed"}


def test_idle_detector_needs_every_gpu_idle_for_the_whole_window_and_fires_once():
    detector = IdleGpuDetector(threshold_percent=5, window_seconds=60)
    assert not detector.observe(0, [1, 2])
    assert not detector.observe(59, [1, 2])
    assert not detector.observe(61, [1, 40])  # one busy GPU resets the clock
    assert not detector.observe(100, [0, 0])
    assert detector.observe(160, [0, 0])
    assert not detector.observe(200, [0, 0])  # once per idle stretch
    assert not detector.observe(210, [99, 0])
    assert not detector.observe(220, [0, 0])
    assert detector.observe(280, [0, 0])  # a new idle stretch fires again
    assert not detector.observe(300, [])  # no readings: no opinion


@pytest.mark.parametrize("returncode,guard,signal_,expected", [
    (0, None, None, ("FINISHED", 0, None)),
    (7, None, None, ("FAILED", 7, None)),
    (-15, "max-runtime of 5s exceeded", None, ("KILLED", GUARD_EXIT_CODE, "max-runtime of 5s exceeded")),
    (0, None, 15, ("KILLED", 143, "SIGTERM received by mlci and forwarded to the training command")),
    (3, None, 2, ("KILLED", 3, "SIGINT received by mlci and forwarded to the training command")),
    (-9, None, None, ("KILLED", 137, "training command terminated by SIGKILL from outside mlci (out of memory?)")),
])
def test_exit_classification(returncode, guard, signal_, expected):
    assert classify_exit(returncode, guard_reason=guard, forwarded_signal=signal_) == expected


def test_runtime_guard_defaults_to_just_before_the_gitlab_job_timeout():
    assert runtime_guard(600, "3600") == (600.0, "train.max-runtime / --max-runtime")
    seconds, origin = runtime_guard(None, "3600")
    assert seconds == 3600 - 180 and "CI_JOB_TIMEOUT=3600s" in origin
    assert runtime_guard(None, "600")[0] == 540  # at least a minute of margin
    assert runtime_guard(None, "60")[0] == 54  # tiny timeouts keep most of the time
    assert runtime_guard(None, None) == (None, "no limit")
    assert runtime_guard(None, "not-a-number") == (None, "no limit")


def candidate(run_id: str, metric: float | None, start: int = 0) -> Candidate:
    return Candidate(run_id=run_id, experiment_id="1", metric=metric, start_time_ms=start)


def test_select_best_by_goal_with_stable_ties_and_ineligible_runs():
    runs = [candidate("a", 0.8, 3), candidate("b", 0.9, 2), candidate("c", 0.9, 1), candidate("d", None),
            candidate("e", math.nan)]
    best_max = select_best(runs, "max")
    assert [c.run_id for c in best_max.ranked] == ["c", "b", "a"]
    assert [c.run_id for c in best_max.ineligible] == ["d", "e"]
    assert select_best(runs, "min").best.run_id == "a"
    assert select_best([candidate("x", None)], "max").best is None
    with pytest.raises(ValueError):
        select_best(runs, "highest")


def test_goal_from_metric_directions():
    directions = {"accuracy": "higher", "*loss": "lower"}
    assert goal_from_directions("accuracy", directions) == "max"
    assert goal_from_directions("val_loss", directions) == "min"
    assert goal_from_directions("latency", directions) is None


def test_the_train_schema_defaults_are_what_the_docs_say(tmp_path, monkeypatch):
    from mlci.config import load_effective

    monkeypatch.chdir(tmp_path)  # no mlci.yml here: defaults plus the environment

    config = load_effective(None, env={"MLCI_TRAIN_IDLE_GPU_ACTION": "kill", "MLCI_TRAIN_COMMAND": "python t.py"})
    train = config.section("train")
    assert train["code-paths"] == ["."] and train["cache"] is True and train["log-data-artifacts"] is True
    assert train["idle-gpu"] == {"threshold-percent": 5, "minutes": 30, "action": "kill"}
    assert train["command"] == "python t.py"  # a string runs through the shell


def test_matrix_variables_can_come_from_one_comma_separated_variable(tmp_path, monkeypatch):
    from mlci.config import load_effective
    from mlci.train.settings import load_settings

    monkeypatch.chdir(tmp_path)
    env = {"MLCI_TRAIN_MATRIX_VARIABLES": "SEED, LR", "SEED": "3", "LR": "0.1"}
    settings = load_settings(load_effective(None, env=env), env)
    assert settings.matrix_variables == ["SEED", "LR"]
    assert effective_params(settings.params, env, settings.matrix_variables) == {"SEED": "3", "LR": "0.1"}
