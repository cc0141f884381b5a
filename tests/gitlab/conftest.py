"""Fixtures for the GitLab adapter tests: a client wired to the loopback fake."""

from __future__ import annotations

import pytest

from mlci.adapters.gitlab import GitLabClient
from mlci.config import Config


class SleepRecorder:
    """Stands in for time.sleep so retry tests are instant and can assert the waits."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(sleeps):
    def make(fake, *, token: str | None = None, url: str | None = None, max_retries: int = 2, **kwargs):
        return GitLabClient(
            url=url or fake.url,
            project=kwargs.pop("project", fake.project_id),
            token=token or fake.token,
            max_retries=max_retries,
            backoff=0.5,
            sleep=sleeps,
            timeout=5,
            **kwargs,
        )

    return make


@pytest.fixture
def client(fake_gitlab, make_client) -> GitLabClient:
    return make_client(fake_gitlab)


def config_for(**gitlab_section) -> Config:
    return Config(data={"gitlab": gitlab_section})
