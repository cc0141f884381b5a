"""The promotion state machine as a pure function: who may go where, and where a rollback lands."""

import pytest

from mlci.deploy.promotion import (
    HistoryEntry,
    PromotionRefused,
    VersionState,
    choose_version,
    environment_history,
    markers_for,
    plan_deploy,
    plan_rollback,
    source_marker,
)
from mlci.errors import EXIT_CHECK_FAILED, EXIT_CONFIG, UsageError

ENVS = ("staging", "production")
THREE = ("dev", "staging", "production")


def blessed(version, *markers):
    return VersionState(version=version, validated=True, markers=markers)


def test_first_environment_takes_a_gate_validated_version():
    plan = plan_deploy(ENVS, "staging", blessed("4"), current_holder="3")
    assert (plan.version, plan.from_version, plan.markers, plan.redeploy) == ("4", "3", ("staging",), False)


def test_first_environment_refuses_an_unvalidated_version_with_exit_1():
    with pytest.raises(PromotionRefused) as refused:
        plan_deploy(ENVS, "staging", VersionState("5", validated=False), current_holder="4")
    assert refused.value.exit_code == EXIT_CHECK_FAILED
    assert "version 5" in refused.value.message and "not validated" in refused.value.message
    assert "mlci.validated=true" in refused.value.message


def test_later_environment_requires_the_previous_environments_marker():
    # Validated is not enough for production: it must have been through staging.
    with pytest.raises(PromotionRefused) as refused:
        plan_deploy(ENVS, "production", blessed("4", "candidate"), current_holder="2", gate_holder="3")
    assert "does not hold the 'staging' marker" in refused.value.message
    assert "held by version 3" in refused.value.message


def test_last_environment_moves_champion_too():
    plan = plan_deploy(ENVS, "production", blessed("4", "staging"), current_holder="2")
    assert plan.markers == ("production", "champion")
    assert markers_for(THREE, "staging") == ("staging",)


def test_middle_environment_of_three_needs_the_first():
    with pytest.raises(PromotionRefused):
        plan_deploy(THREE, "staging", blessed("7"), current_holder=None)
    assert plan_deploy(THREE, "staging", blessed("7", "dev"), current_holder=None).markers == ("staging",)


def test_redeploying_the_current_holder_is_allowed_even_without_the_source_marker():
    # A retried production job: staging has moved on, but production still runs 4.
    plan = plan_deploy(ENVS, "production", blessed("4", "production", "champion"), current_holder="4")
    assert plan.redeploy and plan.from_version == "4"


def test_unknown_environment_is_a_usage_error():
    with pytest.raises(UsageError) as error:
        plan_deploy(ENVS, "prod", blessed("1"), current_holder=None)
    assert error.value.exit_code == EXIT_CONFIG
    assert "staging, production" in error.value.message


def test_version_precedence_flag_then_dotenv_then_marker():
    assert choose_version(flag="3", env_value="2", marker="candidate", marker_holder="1") == ("3", "--version")
    assert choose_version(flag=None, env_value="2", marker="candidate", marker_holder="1")[0] == "2"
    assert choose_version(flag=" ", env_value="", marker="staging", marker_holder="1") == (
        "1", "holder of marker 'staging'")
    with pytest.raises(UsageError, match="no version holds marker 'candidate'"):
        choose_version(flag=None, env_value=None, marker="candidate", marker_holder=None)
    assert source_marker(ENVS, "staging") == "candidate"
    assert source_marker(ENVS, "production") == "staging"


@pytest.mark.parametrize("flag, env_value, origin", [("abc", None, "--version"), ("v3", None, "--version"),
                                                     (None, "staging", "MLCI_MODEL_VERSION")])
def test_a_version_that_is_not_a_number_is_a_usage_error(flag, env_value, origin):
    # Not exit 3 with "see the MLflow server's log" from the registry's HTTP 400: the input is wrong.
    with pytest.raises(UsageError) as error:
        choose_version(flag=flag, env_value=env_value, marker="candidate", marker_holder="1")
    assert error.value.exit_code == EXIT_CONFIG
    assert error.value.message.startswith(f"{origin} must be a registered model version number")


def test_gitlab_semver_versions_are_accepted():
    assert choose_version(flag="1.0.0", env_value=None, marker="candidate", marker_holder=None) == (
        "1.0.0", "--version")
    assert choose_version(flag=None, env_value="2.1.0-rc1", marker="candidate", marker_holder=None)[0] == "2.1.0-rc1"


def _deploy(frm, to):
    return HistoryEntry("deploy", frm, to)


def _rollback(frm, to):
    return HistoryEntry("rollback", frm, to)


def test_rollback_defaults_to_the_previous_holder():
    history = [_deploy(None, "1"), _deploy("1", "2"), _deploy("2", "3")]
    plan = plan_rollback(ENVS, "production", current_holder="3", history=history)
    assert (plan.from_version, plan.to_version, plan.chosen_by) == ("3", "2", "audit trail")
    assert plan.markers == ("production", "champion")


def test_second_rollback_goes_further_back_instead_of_flipping():
    history = [_deploy(None, "1"), _deploy("1", "2"), _deploy("2", "3"), _rollback("3", "2")]
    assert plan_rollback(ENVS, "staging", current_holder="2", history=history).to_version == "1"


def test_a_version_deployed_again_after_a_rollback_is_a_valid_target_again():
    history = [_deploy(None, "1"), _deploy("1", "2"), _rollback("2", "1"), _deploy("1", "2"), _deploy("2", "3")]
    assert plan_rollback(ENVS, "staging", current_holder="3", history=history).to_version == "2"


def test_rollback_to_must_name_a_version_that_held_the_environment():
    history = [_deploy(None, "1"), _deploy("1", "2"), _deploy("2", "5")]
    assert plan_rollback(ENVS, "staging", current_holder="5", history=history, requested="1").to_version == "1"
    with pytest.raises(PromotionRefused) as refused:
        plan_rollback(ENVS, "staging", current_holder="5", history=history, requested="4")
    assert "never held the 'staging' marker" in refused.value.message
    assert "1, 2" in refused.value.message
    with pytest.raises(PromotionRefused, match="already holds"):
        plan_rollback(ENVS, "staging", current_holder="5", history=history, requested="5")


def test_rollback_with_nothing_before_or_nothing_deployed_is_refused():
    with pytest.raises(PromotionRefused, match="no earlier version"):
        plan_rollback(ENVS, "staging", current_holder="1", history=[_deploy(None, "1")])
    with pytest.raises(PromotionRefused, match="no version holds"):
        plan_rollback(ENVS, "staging", current_holder=None, history=[])


def test_history_reads_mlci_records_and_adapter_marker_moves_of_that_environment_only():
    records = [
        {"action": "move-marker", "marker": "staging", "from-version": None, "to-version": "1", "environment": ""},
        {"action": "deploy", "environment": "staging", "from-version": None, "to-version": "1"},
        {"action": "move-marker", "marker": "champion", "from-version": None, "to-version": "1"},
        {"action": "deploy", "environment": "production", "from-version": None, "to-version": "1"},
        {"action": "deploy-failed", "environment": "staging", "from-version": "1", "to-version": "2"},
        # Moved by hand or by another tool: still part of staging's history.
        {"action": "move-marker", "marker": "staging", "from-version": "1", "to-version": "3"},
        {"action": "gate", "to-version": "9"},
    ]
    history = environment_history(records, "staging")
    assert [(h.action, h.from_version, h.to_version) for h in history] == [
        ("move", None, "1"), ("deploy", None, "1"), ("move", "1", "3"),
    ]


def test_the_scoring_server_finds_uvicorn_without_an_activated_virtualenv():
    # `mlflow models serve` execs `uvicorn` by name; a runner that calls .venv/bin/mlci directly
    # must still start it, so the interpreter's own bin directory leads the server's PATH.
    import os
    import sys

    from mlci.deploy.serve import server_environment

    env = server_environment({"PATH": "/usr/bin:/bin", "KEEP": "me"})
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert env["PATH"].endswith("/usr/bin:/bin") and env["KEEP"] == "me"
    assert server_environment({})["PATH"] == os.path.dirname(sys.executable)
