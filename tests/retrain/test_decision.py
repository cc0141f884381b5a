"""The retrain decision as a table: drift / age / force / no champion / nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mlci.durations import format_duration, gitlab_timeout, parse_duration
from mlci.retrain.decision import decide, parse_flag

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


# (id, drift, champion created, max age, force, retrain?, words every reason list must contain)
CASES = [
    ("nothing-happened", False, _ago(3), 30 * DAY, False, False, ["no data drift", "within max-model-age 30d"]),
    ("drift", True, _ago(3), 30 * DAY, False, True, ["data drift detected"]),
    ("too-old", False, _ago(31), 30 * DAY, False, True, ["31d old", "older than max-model-age 30d"]),
    ("exactly-max-age-is-not-older", False, _ago(30), 30 * DAY, False, False, ["within max-model-age"]),
    ("forced", False, _ago(1), 30 * DAY, True, True, ["MLCI_FORCE_RETRAIN=true"]),
    ("no-champion", False, None, 30 * DAY, False, True, ["no champion"]),
    ("no-champion-no-max-age", None, None, None, False, True, ["no champion"]),
    ("old-but-no-max-age", False, _ago(400), None, False, False, ["no max-model-age is set"]),
    ("unknown-drift-does-not-retrain", None, _ago(2), 30 * DAY, False, False, ["MLCI_DRIFT was not set"]),
    ("all-reasons-listed", True, _ago(90), 30 * DAY, True, True, ["forced", "data drift", "90d old"]),
    ("future-champion-counts-as-new", False, NOW + DAY, 1 * DAY, False, False, ["0s old"]),
]


@pytest.mark.parametrize(
    ("drift", "created", "max_age", "force", "expected", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(drift, created, max_age, force, expected, words):
    decision = decide(drift, created, NOW, max_age, force)
    assert decision.retrain is expected
    text = decision.summary
    for word in words:
        assert word in text, f"{word!r} missing from {text!r}"
    assert decision.reasons, "a decision always explains itself"


def test_every_reason_that_holds_is_reported_not_just_the_first():
    decision = decide(True, _ago(60), NOW, 30 * DAY, True)
    assert len(decision.reasons) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", 30 * DAY),
        ("2w", 14 * DAY),
        ("36h", timedelta(hours=36)),
        ("1d 12h", timedelta(hours=36)),
        ("1d12h", timedelta(hours=36)),
        ("90 minutes", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("3 Days", 3 * DAY),
    ],
)
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "not a duration"),
        ("thirty days", "not a duration"),
        ("30x", "unknown unit 'x'"),
        ("3 months", "write days"),
        ("0d", "longer than zero"),
        ("-5d", "not a duration"),
        ("", "not a duration"),
        ("30d; rm -rf /", "not a duration"),
    ],
)
def test_bad_durations_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_durations_format_compactly():
    assert format_duration(timedelta(days=31, hours=2, minutes=5)) == "31d 2h"
    assert format_duration(timedelta(minutes=45)) == "45m"
    assert format_duration(timedelta(seconds=-5)) == "0s"


def test_gitlab_timeout_text():
    assert gitlab_timeout(parse_duration("3h")) == "3h"
    assert gitlab_timeout(parse_duration("1h30m")) == "1h 30m"
    assert gitlab_timeout(parse_duration("20s")) == "1m"  # GitLab's minimum granularity that still makes sense


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("", None), ("  ", None), ("true", True), ("TRUE", True), ("1", True), ("false", False),
     ("0", False), ("no", False)],
)
def test_flags(raw, expected):
    assert parse_flag("MLCI_DRIFT", raw) is expected


def test_an_unclear_flag_is_an_error_not_false():
    with pytest.raises(ValueError, match="MLCI_DRIFT='maybe'"):
        parse_flag("MLCI_DRIFT", "maybe")
