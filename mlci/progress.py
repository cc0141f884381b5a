"""Say what a long step is waiting for, with the time it has taken so far.

A step that can take tens of seconds (a model server loading, a latency
measurement, smoke-test retries) announces itself, repeats "still waiting"
every `every` seconds with the elapsed time, and ends with how long it took.
The step calls tick() from its own loop; nothing runs in the background.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlci.durations import format_duration

Say = Callable[[str], None]


class Progress:
    def __init__(self, say: Say | None, what: str, *, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.say = say
        self.what = what
        self.every = every
        self.clock = clock
        self.started = clock()
        self._next = self.started + every

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def start(self, detail: str = "") -> None:
        if self.say is not None:
            self.say(f"{self.what}{f' ({detail})' if detail else ''} ...")

    def tick(self, detail: str = "") -> None:
        """A 'still waiting' line when `every` seconds passed since the last one."""
        now = self.clock()
        if self.say is None or now < self._next:
            return
        self._next = now + self.every
        self.say(f"{self.what}: still waiting after {format_duration(now - self.started)}"
                 f"{f' ({detail})' if detail else ''}")

    def done(self, result: str = "done") -> str:
        message = f"{self.what}: {result} after {format_duration(self.elapsed)}"
        if self.say is not None:
            self.say(message)
        return message
