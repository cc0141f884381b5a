"""schedules: in mlci.yml: defaults, and errors that point at the offending line."""

from __future__ import annotations

import datetime as dt

import pytest

from mlci.config import load_effective
from mlci.errors import ConfigErrors
from mlci.schedule import desired_schedules
from mlci.schedule.cron import next_run


def load(tmp_path, text):
    path = tmp_path / "mlci.yml"
    path.write_text(text, encoding="utf-8")
    return load_effective(path, env={})


def test_defaults_ref_from_ci_default_branch_and_variables_as_strings(tmp_path):
    config = load(tmp_path, "schedules:\n  - description: Nightly retrain!\n    cron: ' 0  3 * * * '\n"
                            "    variables: {MLCI_PIPELINE: retrain, FORCE: false, N: 3}\n")
    (schedule,) = desired_schedules(config, {"CI_DEFAULT_BRANCH": "trunk"})
    assert schedule.key == "nightly-retrain"
    assert (schedule.cron, schedule.cron_timezone, schedule.ref, schedule.active) == ("0 3 * * *", "UTC", "trunk",
                                                                                      True)
    assert schedule.variables == {"MLCI_PIPELINE": "retrain", "FORCE": "false", "N": "3"}
    assert desired_schedules(config, {})[0].ref == "main"


@pytest.mark.parametrize(
    ("cron", "reason"),
    [("0 3 * *", "expected 5 fields"), ("0 3 * * * 0", "expected 5 fields"), ("61 3 * * *", "not a valid"),
     ("H 3 * * *", "Jenkins"), ("0 3 * * funday", "not a valid")],
)
def test_bad_cron_is_reported_at_its_line_and_column(tmp_path, cron, reason):
    config = load(tmp_path, f"schedules:\n  - description: ok\n    cron: '0 1 * * *'\n"
                            f"  - description: broken\n    cron: '{cron}'\n")
    with pytest.raises(ConfigErrors) as caught:
        desired_schedules(config, {})
    (error,) = caught.value.errors
    assert error.location == f"{tmp_path / 'mlci.yml'}:5:11"
    assert reason in error.message and cron in error.message


def test_bad_timezone_and_duplicate_keys_are_all_reported(tmp_path):
    config = load(tmp_path, "schedules:\n  - description: A\n    cron: '0 1 * * *'\n    cron-timezone: Mars/Olympus\n"
                            "  - description: a\n    cron: '0 2 * * *'\n")
    with pytest.raises(ConfigErrors) as caught:
        desired_schedules(config, {})
    messages = [e.message for e in caught.value.errors]
    assert any(":4:20:" in m and "Mars/Olympus" in m and "IANA" in m for m in messages)
    assert any(":5:18:" in m and "duplicate schedule key 'a'" in m for m in messages)


def test_schema_rejects_unknown_keys_and_bad_variable_names(tmp_path):
    path = tmp_path / "mlci.yml"
    path.write_text("schedules:\n  - description: A\n    cron: '0 1 * * *'\n    crontimezone: UTC\n"
                    "    variables: {'BAD-NAME': x}\n", encoding="utf-8")
    with pytest.raises(ConfigErrors) as caught:
        load_effective(path, env={})
    text = "\n".join(e.message for e in caught.value.errors)
    assert "mlci.yml:4:5: schedules[0]: unknown key 'crontimezone'; did you mean 'cron-timezone'?" in text
    assert "BAD-NAME" in text


def test_next_run_follows_the_time_zone_across_a_dst_switch():
    before_switch = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.timezone.utc)
    upcoming = next_run("0 3 * * *", "Europe/Berlin", now=before_switch)
    assert upcoming.isoformat() == "2026-03-29T03:00:00+02:00"  # CEST began at 02:00 that night
    assert upcoming.astimezone(dt.timezone.utc).hour == 1
