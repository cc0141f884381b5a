"""The registry adapter against a real sqlite MLflow store, in both marker modes."""

from __future__ import annotations

import json
import os

import pytest

from mlci.adapters.ci_env import CiEnv
from mlci.adapters.mlflow import Registry, VersionInfo
from mlci.config import load_effective
from mlci.errors import ConfigError, ExternalServiceError

CI = CiEnv(
    user_login="alice", pipeline_id="901", pipeline_url="https://gl.example/p/-/pipelines/901",
    job_id="77", job_name="mlci-deploy-production", job_url="https://gl.example/p/-/jobs/77",
    commit_sha="abc123", commit_ref="main", project_path="group/proj",
)


@pytest.fixture(params=["alias", "tag"])
def registry(request, trained_store) -> Registry:
    return Registry(trained_store.uri, mode=request.param, ci=CI)


def _register(registry, store, name, *labels):
    return [registry.register(name, store.runs[label]) for label in labels]


def _holders(registry, name, marker):
    return [v.version for v in registry.latest_versions(name) if marker in v.aliases]


def test_auto_mode_on_a_local_store_is_alias_and_says_why(trained_store):
    registry = Registry(trained_store.uri, mode="auto", ci=CI)
    assert registry.mode == "alias"
    assert "alias" in registry.mode_reason


def test_forced_mode_is_reported_as_forced(trained_store):
    registry = Registry(trained_store.uri, mode="tag", ci=CI)
    assert registry.mode == "tag"
    assert "forced" in registry.mode_reason


def test_from_config_reads_the_mlflow_section(tmp_path, trained_store, clean_env):
    (tmp_path / "mlci.yml").write_text(
        f"mlflow:\n  tracking-uri: {trained_store.uri}\n  registry-mode: tag\n", encoding="utf-8"
    )
    registry = Registry.from_config(load_effective(tmp_path / "mlci.yml", env={}), ci=CI)
    assert (registry.tracking_uri, registry.registry_uri) == (trained_store.uri, trained_store.uri)
    assert registry.mode == "tag"


def test_register_keeps_source_run_and_lineage(registry, trained_store, model_name):
    run_id = trained_store.runs["good"]
    version = registry.register(model_name, run_id, tags={"mlci.gate": "passed"})
    assert isinstance(version, VersionInfo)
    assert (version.name, version.version, version.run_id) == (model_name, "1", run_id)
    assert version.source.startswith("models:/")
    # Lineage from the training run wins over the gate job's own CI variables.
    assert version.tags["mlci.gitlab.commit"] == "commit-good"
    assert version.tags["gitlab.CI_JOB_ID"] == "4242"
    assert version.tags["mlci.fingerprint"] == "fp-good"
    assert version.tags["mlci.source_run"] == run_id
    assert version.tags["mlci.gitlab.pipeline_id"] == "901"
    assert version.tags["mlci.gate"] == "passed"
    assert version.aliases == ()
    assert version.created_ms > 0


def test_register_a_run_without_a_model_names_the_artifact_path(registry, trained_store, model_name):
    with pytest.raises(ConfigError, match="no MLflow model at artifact path 'model'") as info:
        registry.register(model_name, trained_store.runs["no-model"])
    assert "log_model" in info.value.hint


def test_latest_versions_newest_first_and_empty_for_unknown_model(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good", "worse", "good")
    assert [v.version for v in registry.latest_versions(model_name)] == ["3", "2", "1"]
    assert registry.latest_versions(model_name + "-missing") == []


def test_markers_have_exactly_one_holder_and_return_the_previous(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good", "worse", "good")
    assert registry.get_marker(model_name, "champion") is None
    assert registry.move_marker(model_name, "champion", "1", reason="first deploy") is None
    assert registry.move_marker(model_name, "champion", "3", reason="better") == "1"
    assert registry.move_marker(model_name, "production", "3") is None
    assert _holders(registry, model_name, "champion") == ["3"]
    holder = registry.get_marker(model_name, "champion")
    assert holder.version == "3"
    # One version holds several markers at once (production moves with champion).
    assert set(holder.aliases) == {"champion", "production"}
    assert registry.move_marker(model_name, "champion", "2") == "3"
    assert _holders(registry, model_name, "champion") == ["2"]
    assert registry.get_version(model_name, "3").aliases == ("production",)


def test_moving_to_the_current_holder_keeps_one_holder(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good", "worse")
    registry.move_marker(model_name, "staging", "2")
    assert registry.move_marker(model_name, "staging", "2") == "2"
    assert _holders(registry, model_name, "staging") == ["2"]


def test_get_marker_of_unknown_model_is_none(registry, model_name):
    assert registry.get_marker(model_name + "-never-registered", "champion") is None


def test_move_to_a_missing_version_fails_before_anything_moves(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good")
    registry.move_marker(model_name, "champion", "1")
    with pytest.raises(ExternalServiceError) as info:
        registry.move_marker(model_name, "champion", "9")
    assert info.value.status == 404
    assert registry.get_marker(model_name, "champion").version == "1"


@pytest.mark.parametrize("marker", ["", "latest", "v3", "review/feature", "a b"])
def test_invalid_marker_names_are_config_errors(registry, marker):
    with pytest.raises(ConfigError, match="invalid registry marker"):
        registry.get_marker("any", marker)


def test_tag_mode_scans_every_page_and_repairs_double_holders(trained_store, model_name, monkeypatch):
    registry = Registry(trained_store.uri, mode="tag", ci=CI)
    _register(registry, trained_store, model_name, "good", "worse", "good", "worse", "good")
    # A job killed in the middle of a move can leave two holders behind.
    registry.set_version_tag(model_name, "1", "mlci.marker.champion", "true")
    registry.set_version_tag(model_name, "4", "mlci.marker.champion", "true")
    monkeypatch.setattr("mlci.adapters.mlflow._PAGE_SIZE", 2)  # 5 versions -> 3 pages
    assert registry.get_marker(model_name, "champion").version == "4"  # newest holder wins
    assert registry.move_marker(model_name, "champion", "2") == "4"
    assert _holders(registry, model_name, "champion") == ["2"]
    tags = {v.version: v.tags for v in registry.latest_versions(model_name)}
    assert [v for v, t in tags.items() if "mlci.marker.champion" in t] == ["2"]


def test_tag_mode_markers_are_invisible_to_alias_mode_and_vice_versa(trained_store, model_name):
    """The two modes never read each other's markers, so a forced mode is unambiguous."""
    tag_registry = Registry(trained_store.uri, mode="tag", ci=CI)
    alias_registry = Registry(trained_store.uri, mode="alias", ci=CI)
    _register(tag_registry, trained_store, model_name, "good", "worse")
    tag_registry.move_marker(model_name, "champion", "1")
    alias_registry.move_marker(model_name, "champion", "2")
    assert tag_registry.get_marker(model_name, "champion").version == "1"
    assert alias_registry.get_marker(model_name, "champion").version == "2"


def test_every_move_appends_an_audit_record(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good", "worse")
    registry.move_marker(model_name, "production", "1", reason="initial release")
    registry.move_marker(model_name, "production", "2", reason="retrained on fresh data")
    registry.move_marker(model_name, "production", "1", reason="rollback: latency regression")

    trail = registry.audit_trail(model_name)
    assert [(r["from-version"], r["to-version"]) for r in trail] == [(None, "1"), ("1", "2"), ("2", "1")]
    first = trail[0]
    assert first["marker"] == "production"
    assert first["reason"] == "initial release"
    assert (first["who"], first["pipeline"], first["job"], first["commit"]) == ("alice", "901", "77", "abc123")
    assert first["when"].endswith("Z") and "T" in first["when"]
    assert first["registry-mode"] == registry.mode
    # Per version, in order, numbered mlci.audit.0001, 0002...
    assert [r["reason"] for r in registry.audit_trail(model_name, "1")] == [
        "initial release", "rollback: latency regression",
    ]
    tags = registry.get_version(model_name, "1").tags
    assert {"mlci.audit.0001", "mlci.audit.0002"} <= set(tags)
    assert json.loads(tags["mlci.audit.0002"])["from-version"] == "2"


def test_append_audit_keeps_caller_fields_and_adds_ci_context(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good")
    registry.append_audit(model_name, "1", {"action": "deploy", "environment": "staging", "who": "deploy-bot"})
    (record,) = registry.audit_trail(model_name, "1")
    assert (record["action"], record["environment"], record["who"]) == ("deploy", "staging", "deploy-bot")
    assert (record["pipeline"], record["commit"], record["job-url"]) == ("901", "abc123", CI.job_url)


def test_descriptions_and_tags_land_on_the_version(registry, trained_store, model_name):
    _register(registry, trained_store, model_name, "good")
    registry.set_description(model_name, "1", "gate passed: 5/5 rules")
    registry.set_version_tag(model_name, "1", "mlci.validated", "true")
    version = registry.get_version(model_name, "1")
    assert version.description == "gate passed: 5/5 rules"
    assert version.validated


def test_run_data_and_artifacts(trained_store, tmp_path):
    registry = Registry(trained_store.uri, mode="alias", ci=CI)
    run_id = trained_store.runs["good"]
    assert registry.run_metrics(run_id) == pytest.approx(trained_store.metrics["good"])
    assert registry.run_params(run_id) == {"label": "good"}
    assert registry.run_tags(run_id)["mlci.fingerprint"] == "fp-good"
    local = registry.download_run_artifacts(run_id, "model", tmp_path / "dl")
    assert (local / "MLmodel").is_file()
    assert local.is_relative_to(tmp_path)


def test_version_artifacts_download(trained_store, tmp_path, model_name):
    registry = Registry(trained_store.uri, mode="alias", ci=CI)
    registry.register(model_name, trained_store.runs["worse"])
    local = registry.download_version_artifacts(model_name, "1", tmp_path / "v1")
    assert (local / "MLmodel").is_file()


def test_unknown_run_is_a_404_with_a_hint(trained_store):
    registry = Registry(trained_store.uri, mode="alias", ci=CI)
    with pytest.raises(ExternalServiceError) as info:
        registry.run_metrics("0" * 32)
    assert info.value.status == 404
    assert info.value.exit_code == 3
    assert "MLCI_RUN_ID" in info.value.hint
    assert trained_store.uri in str(info.value)


def test_tracking_uri_scope_sets_mlflows_global_uri_and_restores_exactly(clean_env, tmp_path):
    """Shared by the adapter and the test stores: nothing may leak into later code or tests."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from mlci.adapters.mlflow import tracking_uri_scope

    inner = f"sqlite:///{tmp_path / 'inner.db'}"
    clean_env.setattr(tracking_utils, "_tracking_uri", None)
    with tracking_uri_scope(inner):
        assert mlflow.get_tracking_uri() == inner
    # Unset stays unset: restoring get_tracking_uri() would pin ./mlflow.db in the current directory.
    assert tracking_utils._tracking_uri is None and "MLFLOW_TRACKING_URI" not in os.environ

    outer = f"sqlite:///{tmp_path / 'outer.db'}"
    clean_env.setenv("MLFLOW_TRACKING_URI", outer)
    with pytest.raises(RuntimeError), tracking_uri_scope(inner):
        assert os.environ["MLFLOW_TRACKING_URI"] == inner
        raise RuntimeError("the block failed")
    assert tracking_utils._tracking_uri is None and os.environ["MLFLOW_TRACKING_URI"] == outer
