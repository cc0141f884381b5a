"""Pools against the pipeline, both ways, as `mlci lint` and `mlci runners render` report it."""

from __future__ import annotations

import re

from tests.runners.conftest import pool


def lint(project, run_cli, *args):
    code, out, err = run_cli("lint", *args)
    return code, out + err


def test_lint_reports_a_training_job_no_pool_serves_at_its_tags(project, run_cli):
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, h100], timeout: 1h}
        """)
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 1
    line = next(line for line in text.splitlines() if "MLCI030" in line)
    # At the include's input, the line the user wrote, not the template's `tags: $[[ inputs.tags ]]`.
    assert re.match(r"\.gitlab-ci\.yml:3:\d+: error: job 'mlci-train' needs a runner with tags "
                    r"\[gpu, h100\]", line), line
    assert "a10g [gpu]" in line  # says which pools exist


def test_lint_is_quiet_when_every_job_has_a_pool(project, run_cli):
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 0 and "MLCI03" not in text, text


def test_lint_without_runner_pools_skips_the_check(project, run_cli):
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, h100], timeout: 1h}
        """)
    project.write_config(runners={})
    code, text = lint(project, run_cli)
    assert code == 0 and "MLCI030" not in text


def test_a_pool_no_job_uses_is_a_warning_at_its_tags_in_mlci_yml(project, run_cli):
    pool(project.runners, "lab")["tags"] = ["rtx-lab"]
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 0  # a warning
    line = next(line for line in text.splitlines() if "MLCI031" in line)
    tags_line = next(i for i, raw in enumerate((project.root / "mlci.yml").read_text().splitlines(), 1)
                     if "rtx-lab" in raw) - 1  # the `tags:` key above the list item
    assert line.startswith(f"mlci.yml:{tags_line}:"), line
    assert "pool 'lab'" in line


def test_a_gpu_job_of_the_users_own_is_checked_too(project, run_cli):
    project.write_ci("""\
        finetune:
          script: [python finetune.py]
          tags: [cuda-12]
          timeout: 1h
          interruptible: true
        lint-code:
          script: [ruff check .]
          tags: [docker]
        """)
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 1
    assert ".gitlab-ci.yml:3:" in text and "job 'finetune' needs a runner with tags [cuda-12]" in text
    assert "lint-code" not in text  # a non-GPU tag no pool declares belongs to other runners


def test_the_retrain_child_pipelines_training_job_is_checked(project, run_cli):
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-retrain.yml
            inputs: {train-tags: "gpu,h100"}
        """)
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 1 and "mlci-retrain child pipeline's training job" in text and "[gpu, h100]" in text


def test_a_job_timeout_longer_than_the_pools_lifetime_is_an_error(project, run_cli):
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, multi-gpu], timeout: 20h}
        """)
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 1
    assert re.search(r"\.gitlab-ci\.yml:3:\d+: error: job 'mlci-train' has timeout 20h, longer than pool 'quad' "
                     r"max-job-lifetime 12h", text), text


def test_a_request_above_the_pools_declared_ceiling_is_an_error(project, run_cli):
    pool(project.runners, "quad")["memory-request-max"] = "64Gi"
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, multi-gpu], memory-request: 128Gi}
        """)
    project.write_config()
    code, text = lint(project, run_cli)
    assert code == 1 and "requests memory 128Gi, above pool 'quad' memory-request-max 64Gi" in text
    pool(project.runners, "quad")["memory-request-max"] = "128Gi"
    project.write_config()
    assert lint(project, run_cli)[0] == 0


def test_quantities_compare_across_units():
    from mlci.runners.crosscheck import quantity

    assert quantity("500m") == 0.5 and quantity("2") == 2
    assert quantity("1Gi") > quantity("1G") > quantity("1000Mi") - 1e9
    assert quantity("16Gi") == 16 * 2**30
    assert quantity("lots") is None and quantity("4 cores") is None
