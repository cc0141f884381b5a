"""Idempotent retrain MR, branches, pipelines and CI lint."""

from __future__ import annotations

import pytest

from mlci.adapters.gitlab import merge_request_marker
from mlci.errors import ExternalServiceError


def open_mrs(fake):
    return [mr for mr in fake.merge_requests.values() if mr["state"] == "opened"]


def test_retrain_merge_request_is_opened_once_then_updated_once(fake_gitlab, client):
    fake_gitlab.add_merge_request(source_branch="feature-x", title="Unrelated human MR")
    client.create_branch("mlci/retrain-churn", "main")
    kwargs = dict(source_branch="mlci/retrain-churn", target_branch="main", key="churn")

    first = client.upsert_merge_request(title="Retrained model churn v3", description="report v3", **kwargs)
    second = client.upsert_merge_request(title="Retrained model churn v4", description="report v4", **kwargs)
    third = client.upsert_merge_request(title="Retrained model churn v4", description="report v4", **kwargs)

    assert [first.action, second.action, third.action] == ["created", "updated", "unchanged"]
    assert first.iid == second.iid == third.iid
    mine = [mr for mr in open_mrs(fake_gitlab) if merge_request_marker("churn") in mr["description"]]
    assert len(mine) == 1 and len(open_mrs(fake_gitlab)) == 2
    assert mine[0]["title"] == "Retrained model churn v4"
    assert mine[0]["description"].startswith("report v4")
    assert first.web_url == mine[0]["web_url"]
    assert len(fake_gitlab.requests_to("POST", r"/merge_requests$")) == 1
    assert len(fake_gitlab.requests_to("PUT", r"/merge_requests/\d+$")) == 1


def test_a_merged_retrain_mr_does_not_block_the_next_one(fake_gitlab, client):
    client.create_branch("mlci/retrain-churn", "main")
    first = client.upsert_merge_request(source_branch="mlci/retrain-churn", target_branch="main",
                                        title="v3", description="r", key="churn")
    fake_gitlab.merge_requests[first.iid]["state"] = "merged"
    second = client.upsert_merge_request(source_branch="mlci/retrain-churn", target_branch="main",
                                         title="v4", description="r", key="churn")
    assert second.action == "created" and second.iid != first.iid


def test_foreign_open_mr_on_the_same_branch_gives_a_409_with_a_hint(fake_gitlab, client):
    fake_gitlab.add_merge_request(source_branch="mlci/retrain-churn", title="someone else's")
    with pytest.raises(ExternalServiceError) as caught:
        client.upsert_merge_request(source_branch="mlci/retrain-churn", target_branch="main",
                                    title="v3", description="r", key="churn")
    assert caught.value.status == 409
    assert "Another open merge request" in caught.value.message
    assert "marker" in caught.value.hint


def test_create_branch_is_a_no_op_when_it_exists(fake_gitlab, client):
    client.create_branch("mlci/retrain-churn", "main")
    client.create_branch("mlci/retrain-churn", "main")
    assert "mlci/retrain-churn" in fake_gitlab.branches
    assert len(fake_gitlab.requests_to("POST", r"/repository/branches$")) == 1


def test_create_branch_from_a_missing_ref_fails_clearly(client):
    with pytest.raises(ExternalServiceError) as caught:
        client.create_branch("x", "no-such-ref")
    assert caught.value.status == 400 and "no-such-ref" in caught.value.hint


def test_trigger_pipeline_posts_the_documented_form(fake_gitlab, client):
    fake_gitlab.add_branch("release")
    ref = client.trigger_pipeline("release", {"MLCI_PIPELINE": "retrain", "REASON": "drift & alert=1"},
                                  fake_gitlab.trigger_token)

    sent = fake_gitlab.requests_to("POST", r"/trigger/pipeline$")[0]
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.form == {"token": fake_gitlab.trigger_token, "ref": "release",
                         "variables[MLCI_PIPELINE]": "retrain", "variables[REASON]": "drift & alert=1"}
    pipeline = fake_gitlab.pipelines[ref.id]
    assert pipeline["source"] == "trigger" and pipeline["ref"] == "release"
    assert pipeline["variables"] == {"MLCI_PIPELINE": "retrain", "REASON": "drift & alert=1"}
    assert ref.web_url == f"{fake_gitlab.project_web_url}/-/pipelines/{ref.id}"


def test_wrong_trigger_token_is_a_404_blaming_the_token(fake_gitlab, client):
    with pytest.raises(ExternalServiceError) as caught:
        client.trigger_pipeline("main", {}, "glptt-wrongwrongwrong000")
    assert caught.value.status == 404 and "trigger token" in caught.value.hint
    assert not fake_gitlab.pipelines


def test_create_pipeline_sends_variables_through_the_pipelines_api(fake_gitlab, client):
    ref = client.create_pipeline("main", {"MLCI_PIPELINE": "retrain"})
    sent = fake_gitlab.requests_to("POST", r"/pipeline$")[0]
    assert sent.json == {"ref": "main", "variables": [
        {"key": "MLCI_PIPELINE", "value": "retrain", "variable_type": "env_var"}]}
    assert fake_gitlab.pipelines[ref.id]["source"] == "api"


def test_create_pipeline_on_a_missing_ref_is_refused(client):
    with pytest.raises(ExternalServiceError) as caught:
        client.create_pipeline("nope", {})
    assert caught.value.status == 400 and "Reference not found" in caught.value.message


def test_ci_lint_returns_validity_errors_and_merged_yaml(client):
    good = client.ci_lint("train:\n  script: [mlci train]\n")
    bad = client.ci_lint("train:\n  image: python\n")
    assert good["valid"] is True and "mlci train" in good["merged_yaml"] and good["errors"] == []
    assert bad["valid"] is False and "jobs:train" in bad["errors"][0]


def test_create_branch_from_a_commit_sha(fake_gitlab, client):
    client.create_branch("mlci/retrain-churn", "0123456789abcdef0123456789abcdef01234567")
    assert "mlci/retrain-churn" in fake_gitlab.branches


def test_a_lost_answer_to_the_mr_post_still_yields_one_mr(fake_gitlab, client):
    client.create_branch("mlci/retrain-churn", "main")
    fake_gitlab.fail_next(r"/merge_requests$", 502, method="POST", after=True)
    result = client.upsert_merge_request(source_branch="mlci/retrain-churn", target_branch="main",
                                         title="v3", description="r", key="churn")
    assert result.action == "created"
    assert [mr["iid"] for mr in open_mrs(fake_gitlab)] == [result.iid]
