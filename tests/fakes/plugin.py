"""Shared pytest fixtures for the loopback fakes (registered from tests/conftest.py).

`fake_gitlab` is a running FakeGitLab on 127.0.0.1 with a free port; it is
stopped at teardown even when the test fails. `fake_gitlab_factory` makes more
(e.g. one mounted under a sub-path: fake_gitlab_factory(base_path="/gitlab")).
"""

from __future__ import annotations

import pytest

from tests.fakes.gitlab_server import FakeGitLab


@pytest.fixture
def fake_gitlab_factory():
    started: list[FakeGitLab] = []

    def make(**kwargs) -> FakeGitLab:
        fake = FakeGitLab(host="127.0.0.1", port=0, **kwargs)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_gitlab(fake_gitlab_factory) -> FakeGitLab:
    return fake_gitlab_factory()


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server per test session (per xdist worker), stopped by PID at the end."""
    from tests.servers.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prometheus_server():
    """One real Prometheus per test session (per xdist worker): 127.0.0.1, temporary TSDB, 1 s scrapes of
    the file_sd folders passed to `.watch(dir)`; stopped by PID at the end."""
    from tests.servers.prometheus import start_prometheus

    server = start_prometheus()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server on 127.0.0.1 per test session (per xdist worker), stopped by PID at the end."""
    from tests.servers.moto_s3 import start_s3

    server = start_s3()
    yield server
    server.stop()
