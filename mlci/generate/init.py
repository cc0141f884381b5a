"""`mlci init`: a starter mlci.yml and a .gitlab-ci.yml that includes the templates.

Pure rendering; the command decides what to write. Every user value goes
through the same YAML-safe filter as the templates, and the rendered files are
parsed back before anyone sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlci import __version__
from mlci.config.yamlload import CONFIG_LIMITS, safe_load
from mlci.errors import UsageError
from mlci.generate.render import RenderError, _environment, yaml_value
from mlci.generate.stages import STAGE_ORDER

INCLUDE_KINDS = ("local", "project", "component")
# What MLflow accepts as a metric name; it also becomes a YAML key in mlci.yml.
METRIC_NAME = re.compile(r"[A-Za-z0-9_\-. /]{1,250}")


@dataclass(frozen=True)
class InitOptions:
    name: str
    model: str = ""
    owner: str = ""
    data: str = "data/train.parquet"
    train_command: str = "python train.py"
    metric: str = "accuracy"
    include: str = "local"
    mlci_project: str = "mlci/mlci"
    ref: str = __version__  # release tags are plain SemVer, the component versions too
    install_spec: str = ""  # empty: the templates install their own version
    train_image: str = "python:3.12-slim"
    gpu_tag: str = "gpu"
    train_timeout: str = "3h"


def _include_key(options: InitOptions, stage: str) -> str:
    if options.include == "local":
        return "local: " + yaml_value(f"ci_templates/mlci-{stage}.yml")
    if options.include == "project":
        return "project: " + yaml_value(options.mlci_project)
    return "component: " + yaml_value(f"$CI_SERVER_FQDN/{options.mlci_project}/{stage}@{options.ref.lstrip('v')}")


def _index_url(options: InitOptions) -> str:
    """The mlci project's PyPI registry when it is not the templates' default project, else empty (the default)."""
    if options.mlci_project == InitOptions.mlci_project:
        return ""
    from urllib.parse import quote

    return ("${CI_SERVER_PROTOCOL}://gitlab-ci-token:${CI_JOB_TOKEN}@${CI_SERVER_FQDN}/api/v4/projects/"
            f"{quote(options.mlci_project, safe='')}/packages/pypi/simple")


# Stages whose image defaults to mlci's release image (the others need the model's own libraries).
RELEASE_IMAGE_STAGES = ("data", "report", "deploy", "retrain", "monitor", "runners")


def _release_image(options: InitOptions) -> str:
    """mlci's release image in the registry of the project that hosts mlci, when that is not the default."""
    if options.mlci_project == InitOptions.mlci_project:
        return ""
    from mlci import __version__

    return f"${{CI_REGISTRY}}/{options.mlci_project.lower()}:{__version__}"


def _stage_inputs(options: InitOptions, stage: str) -> dict[str, object]:
    """The inputs `mlci init` sets on one include; everything else keeps the templates' default."""
    inputs: dict[str, object] = {}
    if options.install_spec:
        inputs["install-spec"] = options.install_spec
    index_url = _index_url(options)
    if index_url:
        inputs["index-url"] = index_url  # mlci from the PyPI registry of the project that hosts it
    release_image = _release_image(options) if stage in RELEASE_IMAGE_STAGES else ""
    if release_image:
        inputs["image"] = release_image  # and its image from that project's registry
    if stage == "train":
        inputs.update({"image": options.train_image, "tags": [options.gpu_tag], "timeout": options.train_timeout})
    elif stage == "retrain":
        inputs.update({"train-image": options.train_image, "train-tags": options.gpu_tag,
                       "train-timeout": options.train_timeout})
    return inputs


def render_init(options: InitOptions) -> dict[str, str]:
    """file name -> content: mlci.yml and .gitlab-ci.yml."""
    if options.include not in INCLUDE_KINDS:
        raise UsageError(f"--include must be one of {', '.join(INCLUDE_KINDS)}")
    if not METRIC_NAME.fullmatch(options.metric):
        raise UsageError(f"--metric {options.metric[:40]!r}: a metric name has 1-250 letters, digits, "
                         "'_', '-', '.', ' ' or '/'")
    env = _environment()
    values = {**options.__dict__, "model": options.model or options.name}
    config = env.get_template("init/mlci.yml.j2").render(**values)
    pipeline = env.get_template("init/gitlab-ci.yml.j2").render(
        **values, stages=STAGE_ORDER, include_kind=options.include,
        include_key=lambda stage: _include_key(options, stage),
        inputs_for=lambda stage: _stage_inputs(options, stage),
    )
    _verify(config, pipeline, options)
    return {"mlci.yml": config, ".gitlab-ci.yml": pipeline}


def _verify(config: str, pipeline: str, options: InitOptions) -> None:
    """The values must come back exactly, and add nothing: a model name cannot become a key."""
    parsed = safe_load(config, "mlci.yml", limits=CONFIG_LIMITS)
    expected = {
        ("project", "name"): options.name,
        ("model", "name"): options.model or options.name,
        ("train", "command"): options.train_command,
    }
    for path, value in expected.items():
        node = parsed
        for part in path:
            node = node[part]
        if node != value:
            raise RenderError(f"mlci.yml: {'.'.join(path)} did not survive rendering")
    if list(parsed) != ["version", "project", "model", "data", "train", "gate", "deploy", "schedules", "retrain"]:
        raise RenderError(f"mlci.yml: unexpected top-level keys {list(parsed)}")
    jobs = safe_load(pipeline, ".gitlab-ci.yml", limits=CONFIG_LIMITS)
    if list(jobs) != ["include"] or len(jobs["include"]) != len(STAGE_ORDER):
        raise RenderError(".gitlab-ci.yml: unexpected structure")
