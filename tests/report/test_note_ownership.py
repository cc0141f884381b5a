"""The MR note in a crowded merge request: a human's comment is never edited, an old pipeline never
overwrites a newer report, concurrent reports settle on one note, and an unchanged plot or report is
not written again."""

from __future__ import annotations

import threading

import pytest

from mlci.adapters.gitlab import GitLabClient, ReportNote, note_marker
from tests.report.test_command import MARKER, mlci_notes, mr_env, project, report  # noqa: F401 - fixture


def bot(fake) -> str:
    return f"project_{fake.project_id}_bot"


def note_writes(fake) -> int:
    return len(fake.requests_to("POST", r"/notes$")) + len(fake.requests_to("PUT", r"/notes/\d+$"))


HUMAN_NOTES = {
    "quotes the marker first": f"{MARKER}\nI copied this from the bot, see above",
    "quotes it inline": f"Why does the note start with `{MARKER}`?",
    "pasted the whole report": f"{MARKER}\n<!-- mlci-report-meta {{\"pipeline\":999999,\"uploads\":{{}}}} -->\n"
                               "## Model report: `churn`\nold numbers",
}


@pytest.mark.parametrize("body", HUMAN_NOTES.values(), ids=list(HUMAN_NOTES))
def test_a_humans_note_is_never_taken_for_mlcis(run_cli, project, fake_gitlab, clean_env, body):  # noqa: F811
    mr = fake_gitlab.add_merge_request()
    human = fake_gitlab.add_note(mr["iid"], body, author="bob")
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])

    code, stdout, stderr = report(run_cli, project, "--no-plots")

    assert code == 0, stderr
    assert fake_gitlab.note_list(mr["iid"])[0] == human  # untouched, byte for byte
    ours = [n for n in fake_gitlab.note_list(mr["iid"]) if n["author"]["username"] == bot(fake_gitlab)]
    assert len(ours) == 1 and "report note created" in stdout
    assert fake_gitlab.requests_to("PUT", r"/notes/\d+$") == []


def test_a_note_by_mlcis_user_without_the_marker_first_is_not_the_report(run_cli, project, fake_gitlab,  # noqa: F811
                                                                       clean_env):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.add_note(mr["iid"], f"retrain summary, see {MARKER}", author=bot(fake_gitlab))
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    assert report(run_cli, project, "--no-plots")[0] == 0
    assert len(fake_gitlab.note_list(mr["iid"])) == 2


@pytest.mark.parametrize(("shown", "ours", "replaced"), [
    (900, 881, False),  # an older pipeline (a retried old job) finishing late
    (881, 881, True),   # the same pipeline: a retried report job
    (870, 881, True),   # a newer pipeline
    (None, 881, True),  # a note written before mlci recorded pipelines
])
def test_a_report_from_an_older_pipeline_never_replaces_a_newer_one(run_cli, project, fake_gitlab,  # noqa: F811
                                                                  clean_env, shown, ours, replaced):
    mr = fake_gitlab.add_merge_request()
    existing = ReportNote.compose(MARKER, "## Model report: `churn`\nfrom another pipeline", shown, {})
    note = fake_gitlab.add_note(mr["iid"], existing, author=bot(fake_gitlab))
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    clean_env.setenv("CI_PIPELINE_ID", str(ours))

    code, stdout, stderr = report(run_cli, project)

    assert code == 0, stderr
    (after,) = mlci_notes(fake_gitlab, mr["iid"])
    assert after["id"] == note["id"]
    if replaced:
        assert ReportNote.parse(after["id"], after["body"]).pipeline_id == ours
    else:
        assert after["body"] == existing
        assert f"already shows pipeline #{shown}, newer than this pipeline #{ours}" in stdout
        assert note_writes(fake_gitlab) == 0 and fake_gitlab.requests_to("POST", r"/uploads$") == []


def test_unchanged_plots_are_not_uploaded_again_and_an_unchanged_report_is_not_written(
        run_cli, project, fake_gitlab, clean_env):  # noqa: F811
    mr = fake_gitlab.add_merge_request()
    mr_env(clean_env, fake_gitlab, iid=mr["iid"])
    assert report(run_cli, project)[0] == 0
    uploads, writes = len(fake_gitlab.requests_to("POST", r"/uploads$")), note_writes(fake_gitlab)
    assert uploads == 3 and writes == 1

    code, stdout, _ = report(run_cli, project)  # the same job run again: nothing changed

    assert code == 0 and "report note unchanged" in stdout and "0 uploaded" in stdout
    assert len(fake_gitlab.requests_to("POST", r"/uploads$")) == uploads
    assert note_writes(fake_gitlab) == writes

    _, out = project
    (out / "drift-plots" / "tenure.png").write_bytes(b"\x89PNG\r\n\x1a\nnew drift picture")
    code, stdout, _ = report(run_cli, project)  # one plot changed: one upload, one edit
    assert code == 0 and "report note updated" in stdout and "1 uploaded" in stdout
    assert len(fake_gitlab.requests_to("POST", r"/uploads$")) == uploads + 1
    assert note_writes(fake_gitlab) == writes + 1


def test_two_pipelines_reporting_at_once_leave_one_note_showing_the_newer(fake_gitlab):
    mr = fake_gitlab.add_merge_request()
    for _ in range(3):  # the race either way round, several times
        fake_gitlab.notes[mr["iid"]].clear()
        barrier = threading.Barrier(2)
        results = {}

        def post(pipeline: int, barrier=barrier, results=results) -> None:
            client = GitLabClient(url=fake_gitlab.url, project=fake_gitlab.project_id, token=fake_gitlab.token,
                                  backoff=0)
            client.current_user()
            barrier.wait()
            results[pipeline] = client.upsert_mr_note(mr["iid"], "churn", f"report of pipeline {pipeline}",
                                                      pipeline_id=pipeline)

        threads = [threading.Thread(target=post, args=(p,)) for p in (500, 501)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        (note,) = [n for n in fake_gitlab.note_list(mr["iid"]) if n["body"].startswith(note_marker("churn"))]
        assert note["body"].endswith("report of pipeline 501")
        assert results[500].note_id == results[501].note_id == note["id"]


def test_an_older_write_that_lands_after_ours_is_put_right(fake_gitlab):
    """Two notes exist (a concurrent first post), the newest report sits on the second: one note remains,
    the first, showing the newest pipeline, whichever job settles it."""
    mr = fake_gitlab.add_merge_request()
    first = fake_gitlab.add_note(mr["iid"], ReportNote.compose(note_marker("churn"), "report of pipeline 600", 600, {}),
                                 author=bot(fake_gitlab))
    fake_gitlab.add_note(mr["iid"], ReportNote.compose(note_marker("churn"), "report of pipeline 602", 602, {}),
                         author=bot(fake_gitlab))
    client = GitLabClient(url=fake_gitlab.url, project=fake_gitlab.project_id, token=fake_gitlab.token, backoff=0)

    result = client.upsert_mr_note(mr["iid"], "churn", "report of pipeline 601", pipeline_id=601)

    (note,) = fake_gitlab.note_list(mr["iid"])
    assert note["id"] == first["id"] and note["body"].endswith("report of pipeline 602")
    assert result.action == "newer-shown" and result.pipeline_id == 602
