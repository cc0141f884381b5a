"""Failures name the URL, the status and the likely fix; the token never leaks."""

from __future__ import annotations

import logging
import socket

import pytest

from mlci.adapters.gitlab import GitLabClient
from mlci.errors import EXIT_EXTERNAL, ExternalServiceError
from tests.gitlab.conftest import config_for


def test_401_says_the_token_was_rejected(fake_gitlab, make_client):
    mr = fake_gitlab.add_merge_request()
    client = make_client(fake_gitlab, token="glpat-revokedrevoked00000")
    with pytest.raises(ExternalServiceError) as caught:
        client.upsert_mr_note(mr["iid"], "churn", "x")
    err = caught.value
    assert err.exit_code == EXIT_EXTERNAL and err.status == 401
    assert f"{fake_gitlab.api_url}/projects/42/merge_requests/1" in err.message
    assert "expired, revoked" in err.hint and "MLCI_GITLAB_TOKEN" in err.hint
    assert "revokedrevoked" not in err.message + err.hint


def test_403_names_the_missing_api_scope(fake_gitlab, make_client):
    mr = fake_gitlab.add_merge_request()
    read_only = fake_gitlab.add_token("glpat-readonlyreadonly000", scopes=("read_api",))
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake_gitlab, token=read_only).upsert_mr_note(mr["iid"], "churn", "x")
    err = caught.value
    assert err.status == 403
    assert "POST" in err.message and "/notes" in err.message
    assert "higher privileges" in err.message
    assert "`api` scope" in err.hint and "read_api" in err.hint


def test_403_for_a_reporter_creating_a_schedule_mentions_the_role(fake_gitlab, make_client):
    reporter = fake_gitlab.add_token("glpat-reporterreporter00", access_level=20)
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake_gitlab, token=reporter).create_schedule(
            description="x", ref="main", cron="0 1 * * *", cron_timezone="UTC", active=True)
    assert caught.value.status == 403
    assert "Developer" in caught.value.hint


def test_404_for_a_wrong_project_points_at_project_id_and_sub_path(fake_gitlab, make_client):
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake_gitlab, project=777).upsert_mr_note(1, "churn", "x")
    err = caught.value
    assert err.status == 404
    assert "/projects/777/merge_requests/1" in err.message
    assert "CI_PROJECT_ID" in err.hint and "sub-path" in err.hint and "'777'" in err.hint


def test_404_for_a_missing_merge_request_names_the_iid(fake_gitlab, client):
    with pytest.raises(ExternalServiceError) as caught:
        client.upsert_mr_note(99, "churn", "x")
    assert caught.value.status == 404
    assert "!99" in caught.value.hint


def test_client_missing_the_sub_path_gets_a_hint_about_it(fake_gitlab_factory, make_client):
    fake = fake_gitlab_factory(base_path="/gitlab")
    mr = fake.add_merge_request()
    root_only = fake.url.removesuffix("/gitlab")
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake, url=root_only).upsert_mr_note(mr["iid"], "churn", "x")
    assert caught.value.status == 404
    assert "sub-path" in caught.value.hint and root_only in caught.value.message


def test_429_is_retried_honouring_retry_after_then_succeeds(fake_gitlab, client, sleeps):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.fail_next(r"/notes$", 429, retry_after=2)

    result = client.upsert_mr_note(mr["iid"], "churn", "x")

    assert result.action == "created"
    assert sleeps.waits == [2.0]
    statuses = [r.status for r in fake_gitlab.requests_to("GET", r"/notes$")]
    assert statuses[:2] == [429, 200]  # then one more listing, to settle concurrent writers


def test_5xx_retries_are_bounded_then_exit_3(fake_gitlab, make_client, sleeps):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.fail_next(r"/merge_requests/\d+$", 503, times=50)
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake_gitlab, max_retries=3).upsert_mr_note(mr["iid"], "churn", "x")
    assert caught.value.status == 503 and "after 3 retries" in caught.value.message
    assert len(fake_gitlab.requests_to("GET", r"/merge_requests/\d+$")) == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]  # exponential backoff


def test_a_huge_retry_after_is_capped(fake_gitlab, client, sleeps):
    fake_gitlab.fail_next(r"/pipeline_schedules$", 429, retry_after=86400)
    client.list_schedules()
    assert sleeps.waits == [60.0]


def test_a_failed_post_is_retried_and_posts_one_note(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.fail_next(r"/notes$", 502, method="POST")
    assert client.upsert_mr_note(mr["iid"], "churn", "x").action == "created"
    assert len(fake_gitlab.note_list(mr["iid"])) == 1


def test_connection_refused_names_the_url(make_client, fake_gitlab):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(fake_gitlab, url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(ExternalServiceError) as caught:
        client.list_schedules()
    assert f"http://127.0.0.1:{port}/api/v4/projects/42/pipeline_schedules" in caught.value.message
    assert "connection refused" in caught.value.message
    assert "CI_SERVER_URL" in caught.value.hint


def test_missing_token_asks_for_a_project_access_token_with_api_scope(fake_gitlab):
    env = fake_gitlab.env()
    del env["MLCI_GITLAB_TOKEN"]
    with pytest.raises(ExternalServiceError) as caught:
        GitLabClient.from_config(config_for(), env)
    assert caught.value.exit_code == EXIT_EXTERNAL
    assert "MLCI_GITLAB_TOKEN is not set" in caught.value.message
    assert "project access token" in caught.value.hint and "`api` scope" in caught.value.hint
    assert "masked" in caught.value.hint


def test_ci_job_token_is_refused_with_an_explanation(fake_gitlab):
    env = fake_gitlab.env(CI_JOB_TOKEN="jobtoken-abcdef123456", MLCI_GITLAB_TOKEN="jobtoken-abcdef123456")
    with pytest.raises(ExternalServiceError) as caught:
        GitLabClient.from_config(config_for(), env)
    assert "CI job token" in caught.value.message and "cannot post notes" in caught.value.message
    assert "jobtoken-abcdef123456" not in caught.value.message + caught.value.hint
    with pytest.raises(ExternalServiceError):
        GitLabClient.from_config(config_for(**{"token-variable": "CI_JOB_TOKEN"}), env)


def test_from_config_reads_url_project_and_the_named_token_variable(fake_gitlab):
    env = {"CI_SERVER_URL": "http://wrong.invalid", "CI_PROJECT_ID": "1", "BOT_TOKEN": fake_gitlab.token}
    cfg = config_for(url=fake_gitlab.url, project=fake_gitlab.project_path, **{"token-variable": "BOT_TOKEN"})
    client = GitLabClient.from_config(cfg, env)
    assert client.server_url == fake_gitlab.url
    assert client.list_schedules() == []
    assert fake_gitlab.requests[-1].path == "/projects/ml-group/churn-model/pipeline_schedules"


def test_token_never_appears_in_output_logs_or_errors(fake_gitlab, make_client, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    mr = fake_gitlab.add_merge_request()
    good = make_client(fake_gitlab)
    good.upsert_mr_note(mr["iid"], "churn", "x")
    fake_gitlab.fail_next(r"/notes", 500, times=10, body={"message": f"boom {fake_gitlab.token}"})
    texts = []
    with pytest.raises(ExternalServiceError) as caught:
        good.upsert_mr_note(mr["iid"], "churn", "y")
    texts += [caught.value.message, caught.value.hint or "", repr(caught.value)]
    with pytest.raises(ExternalServiceError) as caught:
        make_client(fake_gitlab, token="glpat-wrongwrongwrong0000").upsert_mr_note(mr["iid"], "churn", "x")
    texts += [caught.value.message, caught.value.hint or ""]
    with pytest.raises(ExternalServiceError) as caught:
        good.trigger_pipeline("main", {}, "glptt-notTheTriggerToken00")
    texts += [caught.value.message, caught.value.hint or ""]
    out, err = capsys.readouterr()
    everything = "\n".join([*texts, out, err, caplog.text, *(r.getMessage() for r in caplog.records)])
    assert fake_gitlab.requests  # the calls really happened
    for secret in (fake_gitlab.token, "glpat-wrongwrongwrong0000", "glptt-notTheTriggerToken00"):
        assert secret not in everything
    assert "boom [MASKED]" in texts[0]
