"""Schedules with neighbours: two mlci projects (two models) in one GitLab project, schedules from an
older mlci, and a person's own schedule on the same cron."""

from __future__ import annotations

CHURN = """
project: {name: churn}
schedules:
  - {description: Nightly retrain, key: nightly, cron: "0 3 * * *"}
"""
FRAUD = """
project: {name: fraud}
schedules:
  - {description: Nightly retrain, key: nightly, cron: "0 4 * * *"}
  - {description: Weekly drift, key: weekly, cron: "0 6 * * 1"}
"""
FRAUD_WITHOUT_SCHEDULES = "project: {name: fraud}\nschedules: []\n"


def descriptions(fake) -> list[str]:
    return sorted(s["description"] for s in fake.state()["schedules"])


def test_two_models_in_one_project_never_delete_each_others_schedules(project, fake_gitlab, run_cli):
    project(CHURN)
    assert run_cli("schedule", "sync")[0] == 0
    project(FRAUD)
    code, out, err = run_cli("schedule", "sync")
    assert code == 0, err
    assert "0 to delete" in out
    assert descriptions(fake_gitlab) == ["Nightly retrain [mlci:churn/nightly]", "Nightly retrain [mlci:fraud/nightly]",
                                         "Weekly drift [mlci:fraud/weekly]"]

    project(FRAUD_WITHOUT_SCHEDULES)  # fraud stops retraining: only its own schedules go
    code, out, _ = run_cli("schedule", "sync")
    assert code == 0 and "2 to delete" in out
    assert descriptions(fake_gitlab) == ["Nightly retrain [mlci:churn/nightly]"]

    project(CHURN)
    code, out, _ = run_cli("schedule", "list")
    assert "churn" in out or "nightly" in out
    assert "fraud" not in out


def test_a_schedule_from_an_older_mlci_is_adopted_by_its_key_and_others_are_left_alone(project, fake_gitlab,
                                                                                    run_cli):
    fake_gitlab.add_schedule("Nightly retrain [mlci:nightly]", "0 3 * * *")
    fake_gitlab.add_schedule("Old experiment [mlci:experiment]", "0 5 * * *")
    project(CHURN)

    code, _, err = run_cli("schedule", "sync")

    assert code == 0, err
    assert descriptions(fake_gitlab) == ["Nightly retrain [mlci:churn/nightly]", "Old experiment [mlci:experiment]"]
    assert "Old experiment [mlci:experiment]" in err and "left alone" in err


def test_a_hand_made_schedule_on_the_same_ref_and_cron_gets_a_double_retraining_warning(project, fake_gitlab,
                                                                                      run_cli):
    made_by_hand = fake_gitlab.add_schedule("nightly (Bob)", "0  3 * * *", owner="bob")
    fake_gitlab.add_branch("release")
    fake_gitlab.add_schedule("other branch", "0 3 * * *", ref="release")
    fake_gitlab.add_schedule("another time", "0 9 * * *")
    project(CHURN)

    code, _, err = run_cli("schedule", "sync")

    assert code == 0
    warnings = [line for line in err.splitlines() if "retrain twice" in line]
    assert len(warnings) == 1 and f"#{made_by_hand['id']}" in warnings[0] and "'nightly (Bob)'" in warnings[0]
    assert "nightly (Bob)" in descriptions(fake_gitlab)  # warned about, never touched
