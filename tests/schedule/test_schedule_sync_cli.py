"""`mlci schedule sync|list` against the loopback GitLab."""

from __future__ import annotations

import logging

from mlci.schedule import owned_key

CONFIG = """
schedules:
  - description: Nightly retrain
    cron: "0 3 * * *"
    cron-timezone: Europe/Berlin
    variables:
      MLCI_PIPELINE: retrain
      MLCI_FORCE_RETRAIN: false
  - description: Weekly drift check
    key: weekly
    cron: "0 6 * * 1"
    active: false
"""


def remote(fake):
    return {owned_key(s["description"]) or s["description"]: s for s in fake.state()["schedules"]}


def test_first_sync_creates_schedules_with_variables_and_second_sync_is_a_no_op(project, fake_gitlab, run_cli):
    project(CONFIG)
    code, out, err = run_cli("schedule", "sync")
    assert code == 0, err
    assert "2 to create" in out and "applied 2 change(s)" in out
    schedules = remote(fake_gitlab)
    nightly, weekly = schedules["nightly-retrain"], schedules["weekly"]
    assert nightly["description"] == "Nightly retrain [mlci:nightly-retrain]"
    assert (nightly["cron"], nightly["cron_timezone"], nightly["ref"]) == ("0 3 * * *", "Europe/Berlin",
                                                                           "refs/heads/main")
    assert {v["key"]: v["value"] for v in nightly["variables"]} == {"MLCI_PIPELINE": "retrain",
                                                                   "MLCI_FORCE_RETRAIN": "false"}
    assert weekly["active"] is False and weekly["variables"] == []

    writes_before = [r for r in fake_gitlab.requests if r.method != "GET"]
    code, out, _ = run_cli("schedule", "sync")
    assert code == 0
    assert "nothing to change" in out and "0 to create, 0 to update, 0 to delete, 2 unchanged" in out
    assert [r for r in fake_gitlab.requests if r.method != "GET"] == writes_before


def test_sync_updates_and_deletes_only_owned_schedules(project, fake_gitlab, run_cli):
    hand_made = fake_gitlab.add_schedule("Nightly retrain", "*/5 * * * *", variables={"X": "1"})
    stale = fake_gitlab.add_schedule("Old job [mlci:old]", "0 1 * * *")
    drifted = fake_gitlab.add_schedule("Nightly retrain [mlci:nightly-retrain]", "0 2 * * *",
                                       cron_timezone="UTC", variables={"MLCI_PIPELINE": "train", "OBSOLETE": "1"})
    project(CONFIG)

    code, out, err = run_cli("schedule", "sync")

    assert code == 0, err
    assert "1 to create, 1 to update, 1 to delete, 0 unchanged; 1 schedule(s) without mlci's marker left alone" in out
    state = {s["id"]: s for s in fake_gitlab.state()["schedules"]}
    assert stale["id"] not in state
    assert state[hand_made["id"]] == {**hand_made, "next_run_at": state[hand_made["id"]]["next_run_at"]}
    updated = state[drifted["id"]]
    assert (updated["cron"], updated["cron_timezone"]) == ("0 3 * * *", "Europe/Berlin")
    assert {v["key"]: v["value"] for v in updated["variables"]} == {"MLCI_PIPELINE": "retrain",
                                                                   "MLCI_FORCE_RETRAIN": "false"}
    touched = {r.path for r in fake_gitlab.requests if r.method != "GET"}
    assert not any(str(hand_made["id"]) in path for path in touched)
    variable_calls = sorted((r.method, r.path.rsplit("/", 1)[-1]) for r in fake_gitlab.requests
                            if "/variables" in r.path)
    assert variable_calls == [("DELETE", "OBSOLETE"), ("POST", "variables"), ("PUT", "MLCI_PIPELINE")]


def test_dry_run_prints_the_plan_and_changes_nothing(project, fake_gitlab, run_cli):
    fake_gitlab.add_schedule("Old job [mlci:old]", "0 1 * * *")
    project(CONFIG)
    code, out, _ = run_cli("schedule", "sync", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ACTION", "KEY", "DESCRIPTION", "CRON", "DETAILS"]
    assert any(line.startswith("create") and "nightly-retrain" in line and "create variable MLCI_PIPELINE" in line
               for line in lines)
    assert any(line.startswith("delete") and "old" in line for line in lines)
    assert "dry run: nothing was changed" in out
    assert [r.method for r in fake_gitlab.requests if r.method != "GET"] == []


def test_sync_reads_every_page_of_schedules(project, fake_gitlab_factory, clean_env, run_cli):
    fake = fake_gitlab_factory(max_per_page=3)
    for name, value in fake.env().items():
        clean_env.setenv(name, value)
    for i in range(7):
        fake.add_schedule(f"By hand {i}", "0 1 * * *")
    fake.add_schedule("Nightly retrain [mlci:nightly-retrain]", "0 3 * * *", cron_timezone="Europe/Berlin",
                      variables={"MLCI_PIPELINE": "retrain", "MLCI_FORCE_RETRAIN": "false"})
    fake.add_schedule("Weekly drift check [mlci:weekly]", "0 6 * * 1", active=False)
    project(CONFIG)

    code, out, _ = run_cli("schedule", "sync")

    assert code == 0 and "nothing to change" in out and "7 schedule(s) without mlci's marker" in out
    pages = [r.query.get("page", "1") for r in fake.requests_to("GET", r"/pipeline_schedules$")]
    assert pages == ["1", "2", "3"]  # the owned schedules sit on the last page


def test_bad_cron_fails_before_any_api_call_with_file_line(project, fake_gitlab, run_cli):
    path = project("schedules:\n  - description: Nightly\n    cron: '0 25 * * *'\n")
    code, _, err = run_cli("schedule", "sync")
    assert code == 2
    assert f"{path.name}:3:11: invalid cron '0 25 * * *'" in err
    assert fake_gitlab.requests == []


def test_gitlab_failure_mid_sync_exits_3_and_says_how_far_it_got(project, fake_gitlab, run_cli, caplog):
    caplog.set_level(logging.DEBUG)
    project(CONFIG)
    fake_gitlab.fail_next(r"/pipeline_schedules$", 500, method="POST", times=10)
    code, out, err = run_cli("schedule", "sync")
    assert code == 3
    assert "HTTP 500" in err and "/pipeline_schedules" in err and "stopped after 0 of 2 change(s)" in err
    assert fake_gitlab.token not in out + err + caplog.text


def test_unauthorised_sync_exits_3_without_leaking_the_token(project, fake_gitlab, run_cli, clean_env, caplog):
    caplog.set_level(logging.DEBUG)
    clean_env.setenv("MLCI_GITLAB_TOKEN", "glpat-expiredexpired1234")
    project(CONFIG)
    code, out, err = run_cli("schedule", "sync")
    assert code == 3 and "HTTP 401" in err and "expired, revoked" in err
    assert "glpat-expiredexpired1234" not in out + err + caplog.text


def test_list_shows_owned_schedules_with_next_run(project, fake_gitlab, run_cli):
    fake_gitlab.add_schedule("Nightly retrain [mlci:nightly-retrain]", "0 3 * * *", cron_timezone="Europe/Berlin")
    fake_gitlab.add_schedule("Paused [mlci:paused]", "0 3 * * *", active=False)
    fake_gitlab.add_schedule("By hand", "0 1 * * *")
    code, out, _ = run_cli("schedule", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "DESCRIPTION", "CRON", "TIMEZONE", "REF", "NEXT", "RUN"]
    nightly = next(line for line in lines if line.startswith("nightly-retrain"))
    assert "Europe/Berlin" in nightly and " main " in nightly and "03:00 CE" in nightly and "UTC)" in nightly
    assert next(line for line in lines if line.startswith("paused")).endswith("inactive")
    assert "By hand" not in out and "1 schedule(s) without mlci's marker not shown" in out

    code, out, _ = run_cli("schedule", "list", "--all", "--format", "json")
    import json

    listed = json.loads(out)["schedules"]
    assert [s["owned"] for s in listed] == [True, True, False]
    assert listed[0]["next_run"].endswith(("+01:00", "+02:00")) and listed[1]["next_run"] is None
