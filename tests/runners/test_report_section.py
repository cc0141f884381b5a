"""The runner plan in the MR report: the note shows pools, limits and the monthly floor cost."""

from __future__ import annotations

import json


def test_the_mr_report_shows_the_runner_fleet_plan(project, run_cli):
    project.write_config()
    assert run_cli("runners", "render")[0] == 0
    code, _, err = run_cli("runners", "render", "--check")  # what the mlci-runners-render job runs
    assert code == 0, err
    assert json.loads((project.root / "mlci-out" / "runners-plan.json").read_text())["version"] == 1

    code, _, err = run_cli("report", "--dry-run")
    assert code == 0, err
    report = (project.root / "mlci-out" / "report.md").read_text()
    section = report.split("Runner fleet", 1)[1]
    assert "3 pool(s), up to 9 concurrent GPU jobs; idle floor 182.50 USD per month" in section
    row = next(line for line in section.splitlines() if line.startswith("| a10g |"))
    assert "spot (fallback on-demand)" in row and "6h" in row and "10m" in row and "2,937.52 USD" in row


def test_a_stale_folder_turns_the_section_red_and_names_the_files(project, run_cli):
    project.write_config()
    assert run_cli("runners", "render")[0] == 0
    pool_file = project.root / "infra/runners/helm/quad/values.yaml"
    pool_file.write_text(pool_file.read_text().replace("concurrent: 4", "concurrent: 40"))
    assert run_cli("runners", "render", "--check")[0] == 1
    assert run_cli("report", "--dry-run")[0] == 0
    report = (project.root / "mlci-out" / "report.md").read_text()
    assert "Runner fleet: failed" in report and "helm/quad/values.yaml" in report
