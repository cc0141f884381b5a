"""One duration grammar and one format: what mlci.yml accepts and what mlci prints agree everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlci.durations import format_duration, gitlab_timeout, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("36h", 129600), ("1d12h", 129600), ("1d 12h", 129600), ("1d, 12h", 129600),
    ("2w", 1209600), ("90 minutes", 5400), ("3 Days", 259200), ("1h30m", 5400),
])
def test_every_place_reads_the_same_grammar(text, seconds):
    from mlci.data.contract import parse_duration as contract_duration

    assert parse_duration(text) == timedelta(seconds=seconds)
    assert contract_duration(text) == seconds, "data contracts read durations the same way"


@pytest.mark.parametrize(("text", "problem"), [
    ("3 months", "months vary in length"), ("soon", "not a duration"), ("0s", "longer than zero"),
    ("12", "not a duration"), ("5 fortnights", "unknown unit 'fortnights'"),
])
def test_a_wrong_duration_says_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_duration(text)


@pytest.mark.parametrize(("value", "shown"), [
    (timedelta(days=1, hours=12), "1d 12h"), (129600, "1d 12h"), (timedelta(days=31, hours=2, minutes=5), "31d 2h"),
    (245, "4m 5s"), (8.43, "8.4s"), (0, "0s"), (-3, "0s"), (3600, "1h"),
])
def test_one_format_for_every_printed_duration(value, shown):
    assert format_duration(value) == shown


def test_what_is_printed_reads_back_as_the_same_duration():
    for seconds in (90, 5400, 129600, 1209600):
        assert parse_duration(format_duration(seconds)) == timedelta(seconds=seconds)
    assert gitlab_timeout(timedelta(hours=3, minutes=30)) == "3h 30m"
