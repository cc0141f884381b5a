"""runners: in mlci.yml: the cost guard and the rules between fields, each reported at its line."""

from __future__ import annotations

import re

import pytest

from mlci.errors import ConfigErrors
from tests.runners.conftest import pool


def errors_of(project) -> list[str]:
    project.write_config()
    with pytest.raises(ConfigErrors) as caught:
        project.fleet()
    return [e.message for e in caught.value.errors]


def line_of(project, needle: str) -> int:
    lines = (project.root / "mlci.yml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_the_declared_fleet_loads_with_derived_limits_and_costs(project):
    project.write_config()
    fleet = project.fleet()
    spot, quad, lab = fleet.pools
    assert (spot.concurrency, quad.jobs_per_node, quad.concurrency, lab.concurrency) == (4, 2, 4, 1)
    assert [(g.name, g.capacity, g.min, g.max) for g in spot.node_groups()] == [
        ("mlci-a10g-spot", "spot", 0, 4), ("mlci-a10g-on-demand", "on-demand", 0, 4)]
    assert [g.name for g in quad.node_groups()] == ["mlci-quad"]
    assert spot.max_job_lifetime == 6 * 3600 and spot.idle_timeout == 600
    # Floor: min nodes around the clock (730 h); ceiling: max nodes at the dearest price they can be bought at.
    assert fleet.cost(spot).floor_monthly == 0.0
    assert fleet.cost(spot).ceiling_monthly == round(4 * 1.006 * 730, 2)  # the on-demand fallback is the ceiling
    assert fleet.cost(lab).floor_monthly == round(1 * 0.25 * 730, 2)


@pytest.mark.parametrize("key", ["idle-timeout", "max-job-lifetime"])
def test_every_pool_must_state_its_idle_timeout_and_job_lifetime(project, key):
    del pool(project.runners, "a10g")[key]
    messages = errors_of(project)
    assert any(f"'{key}' is required" in m and m.startswith("mlci.yml:") for m in messages), messages


def test_a_pool_that_keeps_nodes_running_must_say_always_on(project):
    lab = pool(project.runners, "lab")
    del lab["always-on"]
    messages = errors_of(project)
    hit = [m for m in messages if "always-on: true" in m]
    assert hit and hit[0].startswith(f"mlci.yml:{line_of(project, 'min: 1')}:"), messages


def test_min_zero_needs_no_always_on_and_costs_nothing_idle(project):
    lab = pool(project.runners, "lab")
    lab.update({"min": 0})
    del lab["always-on"]
    project.write_config()
    assert project.fleet().cost(project.fleet().pools[2]).floor_monthly == 0.0


def test_a_pool_that_costs_money_idle_needs_a_price(project):
    project.runners["prices"].pop("lab-box")
    messages = errors_of(project)
    assert any("no price for instance type 'lab-box'" in m for m in messages), messages


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max-job-lifetime", "5m", "at least 10m"),
    ("max-job-lifetime", "6 fortnights", "unknown unit"),
    ("idle-timeout", 10, "expected string"),
    ("fallback", "on-demand", "only applies to pools with capacity: spot"),
    ("min", 9, "larger than max"),
    ("gpus-per-node", 1, "no job would fit a node"),
])
def test_inconsistent_pool_settings_are_errors_at_their_line(project, key, value, expected):
    quad = pool(project.runners, "quad")
    quad[key] = value
    if key == "min":
        quad["always-on"] = True
        project.runners["prices"]["g5.12xlarge"]["spot"] = 2.0
    messages = errors_of(project)
    assert any(expected in m for m in messages), messages
    assert all(re.match(r"mlci\.yml:\d+:\d+: ", m) for m in messages), messages


def test_docker_pools_reject_what_the_ansible_role_cannot_render(project):
    lab = pool(project.runners, "lab")
    lab.update({"capacity": "spot", "gpus-per-node": 4, "cpu-request-max": "8"})
    messages = " | ".join(errors_of(project))
    assert "spot capacity is rendered for kubernetes pools only" in messages
    assert "every GPU of its host" in messages
    assert "cpu-request-max applies to kubernetes pools only" in messages


def test_kubernetes_pools_need_an_instance_type(project):
    del pool(project.runners, "quad")["instance-type"]
    assert any("need `instance-type`" in m for m in errors_of(project))


def test_pool_names_must_be_unique_and_dns_safe(project):
    project.runners["pools"][1]["name"] = "a10g"
    assert any("used twice" in m for m in errors_of(project))
    project.runners["pools"][1]["name"] = "Quad_GPU"
    assert any("does not match" in m for m in errors_of(project))


def test_two_pools_with_the_same_tags_are_a_warning(project):
    pool(project.runners, "quad")["tags"] = ["gpu"]
    project.write_config()
    warnings = project.fleet().warnings
    assert len(warnings) == 1 and "same tags" in warnings[0][1]


def test_a_gitlab_url_with_credentials_is_refused_before_it_reaches_a_committed_file(project):
    project.write_config(gitlab={"url": "https://deploy:s3cret@gitlab.example.com"})
    with pytest.raises(ConfigErrors) as caught:
        project.fleet()
    message = caught.value.errors[0].message
    assert "carries a user or password" in message and "s3cret" not in message
