"""One living MR note per key: created once, updated in place, found on any page."""

from __future__ import annotations

import pytest

from mlci.adapters.gitlab import note_marker
from mlci.errors import ConfigError


def mlci_notes(fake, iid, key="churn"):
    return [n for n in fake.note_list(iid) if note_marker(key) in n["body"]]


def test_first_post_creates_one_note_with_hidden_marker(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    result = client.upsert_mr_note(mr["iid"], "churn", "## Model report\nAUC 0.91")

    assert result.action == "created"
    notes = fake_gitlab.note_list(mr["iid"])
    assert len(notes) == 1
    assert notes[0]["body"].splitlines()[0] == "<!-- mlci-report:churn -->"
    assert "AUC 0.91" in notes[0]["body"]
    assert result.note_id == notes[0]["id"]
    assert result.url == f"{mr['web_url']}#note_{notes[0]['id']}"


def test_rerun_updates_the_same_note_and_identical_body_is_left_alone(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    first = client.upsert_mr_note(mr["iid"], "churn", "AUC 0.91")
    second = client.upsert_mr_note(mr["iid"], "churn", "AUC 0.93")
    third = client.upsert_mr_note(mr["iid"], "churn", "AUC 0.93")

    assert (second.action, third.action) == ("updated", "unchanged")
    assert first.note_id == second.note_id == third.note_id
    assert [n["body"].splitlines()[-1] for n in mlci_notes(fake_gitlab, mr["iid"])] == ["AUC 0.93"]
    assert len(fake_gitlab.requests_to("PUT", r"/notes/\d+$")) == 1
    assert fake_gitlab.requests_to("POST", r"/notes$")[0].json["body"].startswith(note_marker("churn"))


def test_note_on_the_third_page_is_found_and_updated_not_duplicated(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    for i in range(230):
        fake_gitlab.add_note(mr["iid"], f"review comment {i}", author="bob")
    fake_gitlab.add_note(mr["iid"], "merged the branch", author="bob", system=True)
    mine = client.upsert_mr_note(mr["iid"], "churn", "old report")
    assert mine.action == "created"

    result = client.upsert_mr_note(mr["iid"], "churn", "new report")

    assert result.action == "updated" and result.note_id == mine.note_id
    assert len(mlci_notes(fake_gitlab, mr["iid"])) == 1
    pages = [r.query.get("page", "1") for r in fake_gitlab.requests_to("GET", r"/notes$")]
    assert pages[-3:] == ["1", "2", "3"]


def test_each_key_owns_its_own_note_and_human_notes_are_untouched(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.add_note(mr["iid"], "LGTM", author="bob")
    client.upsert_mr_note(mr["iid"], "churn", "churn report")
    client.upsert_mr_note(mr["iid"], "churn-v2", "second model")
    client.upsert_mr_note(mr["iid"], "churn", "churn report, again")

    bodies = sorted(n["body"] for n in fake_gitlab.note_list(mr["iid"]))
    assert len(bodies) == 3
    assert "LGTM" in bodies
    assert sum("mlci-report:churn -->" in b for b in bodies) == 1
    assert sum("mlci-report:churn-v2 -->" in b for b in bodies) == 1


def test_self_managed_gitlab_under_a_sub_path(fake_gitlab_factory, make_client):
    fake = fake_gitlab_factory(base_path="/gitlab")
    mr = fake.add_merge_request()
    client = make_client(fake, url=fake.url + "/")  # a trailing slash must not break the API root

    created = client.upsert_mr_note(mr["iid"], "churn", "v1")
    updated = client.upsert_mr_note(mr["iid"], "churn", "v2")

    assert (created.action, updated.action) == ("created", "updated")
    assert created.url.startswith(fake.url + "/ml-group/churn-model/-/merge_requests/")
    assert all(r.status < 400 for r in fake.requests)


@pytest.mark.parametrize("key", ["", "a-->b", "two\nlines"])
def test_marker_keys_that_would_break_the_hidden_comment_are_refused(key):
    with pytest.raises(ConfigError):
        note_marker(key)


def test_a_lost_answer_to_the_first_post_does_not_leave_two_notes(fake_gitlab, client):
    mr = fake_gitlab.add_merge_request()
    fake_gitlab.fail_next(r"/notes$", 502, method="POST", after=True)  # created, but the proxy answered 502

    result = client.upsert_mr_note(mr["iid"], "churn", "report")

    assert result.action == "created"
    assert [n["id"] for n in mlci_notes(fake_gitlab, mr["iid"])] == [result.note_id]
    assert len(fake_gitlab.requests_to("POST", r"/notes$")) == 2


def test_non_numeric_iid_is_refused_before_any_request(fake_gitlab, client):
    with pytest.raises(ConfigError):
        client.upsert_mr_note("!12", "churn", "x")
    assert fake_gitlab.requests == []
