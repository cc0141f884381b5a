"""Long waits say what they wait for and for how long, then how long they took."""

from __future__ import annotations

from mlci.progress import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_is_announced_repeated_with_elapsed_time_and_closed_with_its_duration():
    clock, lines = Clock(), []
    progress = Progress(lines.append, "waiting for http://127.0.0.1:5001/ping", every=10, clock=clock)
    progress.start("the model loads first; up to 120 s")
    for step in range(1, 40):  # 39 ticks a second apart: one line per 10 s, not one per tick
        clock.now = 100.0 + step
        progress.tick("connection refused")
    clock.now = 100.0 + 41.26
    progress.done("answered")
    assert lines == [
        "waiting for http://127.0.0.1:5001/ping (the model loads first; up to 120 s) ...",
        "waiting for http://127.0.0.1:5001/ping: still waiting after 10s (connection refused)",
        "waiting for http://127.0.0.1:5001/ping: still waiting after 20s (connection refused)",
        "waiting for http://127.0.0.1:5001/ping: still waiting after 30s (connection refused)",
        "waiting for http://127.0.0.1:5001/ping: answered after 41.3s",
    ]


def test_a_quick_step_reports_only_its_duration_and_silence_is_allowed():
    clock, lines = Clock(), []
    progress = Progress(lines.append, "measuring the candidate's latency", clock=clock)
    clock.now += 8.43
    progress.tick()
    assert progress.done("p95 3.1 ms") == "measuring the candidate's latency: p95 3.1 ms after 8.4s"
    assert lines == ["measuring the candidate's latency: p95 3.1 ms after 8.4s"]
    Progress(None, "quiet").done()  # no printer: nothing to say, nothing fails
