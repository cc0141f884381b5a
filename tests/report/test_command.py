"""`mlci report` end to end: real MLflow sqlite store, real plots, the loopback fake GitLab."""

from __future__ import annotations

import json
import re

import pytest
import requests

from mlci.report.plots import PNG_SIGNATURE
from tests.report import scenarios
from tests.report.conftest import MODEL

MARKER = f"<!-- mlci-report:{MODEL} -->"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture
def project(tmp_path, report_store, clean_env):
    """An mlci.yml pointing at the shared store, the gate/train artifacts of earlier jobs, a clean env."""
    config = tmp_path / "mlci.yml"
    config.write_text(
        f"model:\n  name: {MODEL}\n"
        f"mlflow:\n  tracking-uri: '{report_store.uri}'\n  registry-mode: alias\n"
        "gitlab:\n  retry-backoff: 0\n"
        "report:\n  history-metrics: [accuracy]\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    gate = scenarios.gate("passed", [scenarios.verdict("accuracy >= 0.9", "passed", observed=0.91, threshold=0.9)],
                          registered="7")
    (out / "gate.json").write_text(json.dumps(gate))
    (out / "drift-plots").mkdir()
    (out / "drift-plots" / "tenure.png").write_bytes(PNG_SIGNATURE + b"drift-job-png")
    clean_env.chdir(tmp_path)
    clean_env.setenv("MLCI_RUN_ID", report_store.candidate_run)
    return config, out


def mr_env(monkeypatch, fake, **extra):
    env = fake.env(
        CI_MERGE_REQUEST_IID=str(extra.pop("iid")),
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="feature/deeper-trees",
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_PIPELINE_ID="881",
        CI_JOB_ID="4521",
        CI_COMMIT_SHA="0123456789abcdef0123456789abcdef01234567",
        **extra,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def report(run_cli, project, *args):
    config, out = project
    return run_cli("--config", str(config), "--out-dir", str(out), "report", *args)


def mlci_notes(fake, iid):
    return [n for n in fake.note_list(iid) if MARKER in n["body"]]


def test_first_post_uploads_plots_and_links_them_absolutely(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request(source_branch="feature/deeper-trees")
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])

    code, stdout, stderr = report(run_cli, project)

    assert code == 0, stderr
    notes = mlci_notes(fake_gitlab, mr["iid"])
    assert len(notes) == 1
    body = notes[0]["body"]
    marker, meta, visible = body.split("\n", 2)
    assert marker == MARKER and meta.startswith("<!-- mlci-report-meta ") and meta.endswith(" -->")
    assert visible.startswith("## Model report: `churn`")
    assert "**Gate: ✅ passed** · model version `7`" in body
    # Without CI_PIPELINE_URL/CI_JOB_URL the links are derived from the project URL.
    assert f"pipeline [\\#881]({fake_gitlab.project_web_url}/-/pipelines/881)" in body
    assert f"job [\\#4521]({fake_gitlab.project_web_url}/-/jobs/4521)" in body
    assert "| `accuracy` ↑ | 0.91 | 0.87 | ▲ +0.04 (+4.60%) 🟢 better | 0.89 | ▲ +0.02 (+2.25%) 🟢 better |" in body
    assert "| `max_depth` | `8` | `6` | `6` |" in body
    links = IMAGE.findall(body)
    assert sorted(link.rsplit("/", 1)[1] for link in links) == [
        "confusion-matrix.png", "drift-tenure.png", "history-accuracy.png",
    ]
    uploads = fake_gitlab.state()["uploads"]
    assert len(uploads) == 3
    for link in links:
        assert link.startswith(f"{fake_gitlab.url}/-/project/{fake_gitlab.project_id}/uploads/")
        served = requests.get(link, timeout=5)
        assert served.status_code == 200 and served.content.startswith(PNG_SIGNATURE)
    _, out = project
    # report.md is what reviewers see; the plots and the HTML page stay as job artifacts.
    assert (out / "report.md").read_text() == visible
    assert sorted(p.name for p in (out / "report-plots").iterdir()) == [
        "confusion-matrix.png", "drift-tenure.png", "history-accuracy.png",
    ]
    assert (out / "report-plots" / "drift-tenure.png").read_bytes() == PNG_SIGNATURE + b"drift-job-png"
    assert '<img src="report-plots/history-accuracy.png"' in (out / "report.html").read_text()
    assert f"merge request !{mr['iid']}: report note created" in stdout


def test_self_managed_gitlab_under_a_sub_path(run_cli, project, fake_gitlab_factory, clean_env):
    fake = fake_gitlab_factory(base_path="/gitlab")
    mr = fake.add_merge_request()
    mr_env(clean_env, fake, iid=mr["iid"])

    code, _, stderr = report(run_cli, project)

    assert code == 0, stderr
    links = IMAGE.findall(mlci_notes(fake, mr["iid"])[0]["body"])
    assert links and all(link.startswith(f"http://{fake.host}:{fake.port}/gitlab/-/project/") for link in links)
    assert all(requests.get(link, timeout=5).content.startswith(PNG_SIGNATURE) for link in links)


def test_rerun_updates_the_same_note(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.add_note(mr["iid"], "Looks good, but check the drift.", author="bob")
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    assert report(run_cli, project)[0] == 0
    first = mlci_notes(fake_gitlab, mr["iid"])[0]

    clean_env.setenv("CI_JOB_ID", "4522")  # a retried job: same pipeline, same results, another job link
    code, stdout, _ = report(run_cli, project)

    assert code == 0
    notes = fake_gitlab.note_list(mr["iid"])
    assert len(notes) == 2 and notes[0]["body"] == "Looks good, but check the drift."
    assert [n["id"] for n in mlci_notes(fake_gitlab, mr["iid"])] == [first["id"]]
    assert "report note updated" in stdout and "0 uploaded" in stdout
    assert "/-/jobs/4522" in mlci_notes(fake_gitlab, mr["iid"])[0]["body"]
    assert len(fake_gitlab.requests_to("POST", r"/notes$")) == 1
    assert len(fake_gitlab.requests_to("POST", r"/uploads$")) == 3  # the first run's three plots only


def test_key_override_gives_a_separate_note(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    assert report(run_cli, project, "--no-plots")[0] == 0
    assert report(run_cli, project, "--no-plots", "--key", "churn-eu")[0] == 0
    bodies = [n["body"].splitlines()[0] for n in fake_gitlab.note_list(mr["iid"])]
    assert bodies == [MARKER, "<!-- mlci-report:churn-eu -->"]
    assert fake_gitlab.state()["uploads"] == []


@pytest.mark.parametrize("how", ["dry-run", "not-a-merge-request"])
def test_dry_run_and_branch_pipelines_post_nothing(run_cli, project, fake_gitlab, clean_env, how):
    mr = fake_gitlab.add_merge_request()
    if how == "dry-run":
        mr_env(clean_env, fake_gitlab, iid=mr["iid"])
        args = ["--dry-run"]
    else:
        for key, value in fake_gitlab.env(CI_PIPELINE_SOURCE="push", CI_COMMIT_REF_NAME="main").items():
            clean_env.setenv(key, value)
        args = []

    code, stdout, _ = report(run_cli, project, *args)

    assert code == 0
    assert fake_gitlab.requests == []
    _, out = project
    text = (out / "report.md").read_text()
    assert "## Model report: `churn`" in text and "<!-- mlci-report" not in text
    assert "(report-plots/confusion-matrix.png)" in text  # relative links work in the artifact browser
    assert (out / "report.html").exists()
    assert "nothing posted to GitLab" in stdout


def test_missing_token_exits_3_after_writing_the_artifacts(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    clean_env.delenv("MLCI_GITLAB_TOKEN")

    code, _, stderr = report(run_cli, project, "--no-plots")

    assert code == 3
    assert "MLCI_GITLAB_TOKEN" in stderr and "project access token with the `api` scope" in stderr
    assert "CI_JOB_TOKEN cannot write merge request notes" in stderr
    assert fake_gitlab.requests == []
    _, out = project
    assert (out / "report.md").exists()


def test_job_token_is_refused(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"], CI_JOB_TOKEN="glcbt-64_jobtokenjobtoken")
    clean_env.setenv("MLCI_GITLAB_TOKEN", "glcbt-64_jobtokenjobtoken")

    code, stdout, stderr = report(run_cli, project, "--no-plots")

    assert code == 3
    assert "CI job token" in stderr
    assert "jobtokenjobtoken" not in stdout + stderr


def test_a_refusing_gitlab_exits_3_and_never_shows_the_token(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    fake_gitlab.fail_next(r"/notes", 403, times=5, body={"message": f"403 Forbidden {fake_gitlab.token}"})

    code, stdout, stderr = report(run_cli, project)

    assert code == 3
    assert "(HTTP 403)" in stderr and f"/merge_requests/{mr['iid']}/notes" in stderr
    assert "api` scope" in stderr
    _, out = project
    artifacts = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert fake_gitlab.token not in stdout + stderr + artifacts


def test_rate_limited_notes_are_retried_then_posted(run_cli, project, fake_gitlab, clean_env):
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    fake_gitlab.fail_next(r"/notes$", 429, method="POST", retry_after=0)

    code, _, stderr = report(run_cli, project, "--no-plots")

    assert code == 0, stderr
    assert len(mlci_notes(fake_gitlab, mr["iid"])) == 1
    assert [r.status for r in fake_gitlab.requests_to("POST", r"/notes$")] == [429, 201]


def test_unreachable_gitlab_exits_3_naming_the_url(run_cli, project, fake_gitlab_factory, clean_env):
    fake = fake_gitlab_factory()
    mr = fake.add_merge_request()
    mr_env(clean_env, fake, iid=mr["iid"])
    clean_env.setenv("MLCI_GITLAB_MAX_RETRIES", "0")
    fake.stop()

    code, _, stderr = report(run_cli, project, "--no-plots")

    assert code == 3
    assert f"GitLab http://127.0.0.1:{fake.port}/api/v4" in stderr and "connection refused" in stderr


def test_model_card_flags_are_rejected_on_the_report(run_cli, project):
    code, _, stderr = report(run_cli, project, "--version", "3")
    assert code == 2 and "belong to `mlci report model-card`" in stderr


@pytest.mark.parametrize(
    ("problem", "status", "cause"),
    [
        ("revoked-token", 401, "was rejected: it is expired, revoked or not a GitLab token"),
        ("unknown-merge-request", 404, "the merge request iid !999"),
    ],
)
def test_401_and_404_name_the_url_and_the_likely_cause(run_cli, project, fake_gitlab, clean_env, problem, status,
                                                       cause):
    mr = fake_gitlab.add_merge_request()
    iid = 999 if problem == "unknown-merge-request" else mr["iid"]
    mr_env(clean_env, fake_gitlab, iid=iid)
    if problem == "revoked-token":
        clean_env.setenv("MLCI_GITLAB_TOKEN", "glpat-revokedRevoked0123456789")

    code, stdout, stderr = report(run_cli, project, "--no-plots")

    assert code == 3
    assert f"GitLab {fake_gitlab.api_url}/projects/{fake_gitlab.project_id}/merge_requests/{iid}" in stderr
    assert f"(HTTP {status})" in stderr and cause in stderr
    assert "revokedRevoked" not in stdout + stderr
    assert fake_gitlab.note_list(mr["iid"]) == []


def test_with_no_inputs_at_all_the_report_is_still_written(run_cli, tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    clean_env.setenv("MLCI_MODEL_NAME", "churn")
    code, stdout, stderr = run_cli("--out-dir", str(tmp_path / "out"), "report")
    assert code == 0, stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.startswith("## Model report: `churn`") and "No candidate run was found" in text
    assert not (tmp_path / "out" / "report-plots").exists()
    assert not (tmp_path / ".mlci").exists()  # MLflow was never opened
    assert "nothing posted to GitLab" in stdout
