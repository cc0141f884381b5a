"""What a training run records about where it came from, and what the child sees.

Pure functions over plain values: the command module gathers the inputs
(CiEnv, config, hashed data) and the MLflow adapter writes the results.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence

from mlci.train.fingerprint import DataFile

MATRIX_PARAM_PREFIX = "MLCI_PARAM_"
# MLflow tag keys allow alphanumerics, _ - . / : and space; the rest become _.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./: ]")
# Beyond this many files the per-file tags would drown the run page; the
# dataset inputs and the mlci.data JSON tag still list every file.
MAX_PER_FILE_DATA_TAGS = 50


def matrix_params(env: Mapping[str, str], matrix_variables: Sequence[str]) -> dict[str, str]:
    """Params that come from `parallel: matrix` variables.

    GitLab does not say which variables a matrix set, so a variable counts when
    it is named MLCI_PARAM_<NAME> (param `<name>`, lower case) or is listed in
    train.matrix-variables (param under its own name). Listed but unset
    variables are skipped: the same config also runs outside a sweep.
    """
    params: dict[str, str] = {}
    for name in sorted(env):
        if name.startswith(MATRIX_PARAM_PREFIX) and len(name) > len(MATRIX_PARAM_PREFIX):
            params[name[len(MATRIX_PARAM_PREFIX):].lower()] = env[name]
    for name in matrix_variables:
        if name in env:
            params[name] = env[name]
    return params


def effective_params(config_params: Mapping[str, object], env: Mapping[str, str],
                     matrix_variables: Sequence[str]) -> dict[str, object]:
    """Config params overlaid by matrix params: a sweep varies what the file fixes."""
    return {**dict(config_params), **matrix_params(env, matrix_variables)}


def param_strings(params: Mapping[str, object]) -> dict[str, str]:
    """MLflow stores params as text; null stays distinguishable from ''."""
    out = {}
    for key, value in params.items():
        if isinstance(value, bool):
            out[key] = str(value).lower()
        elif value is None:
            out[key] = "null"
        else:
            out[key] = str(value)
    return out


def command_text(command: Sequence[str] | str) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def tag_safe(text: str) -> str:
    return _TAG_UNSAFE.sub("_", text)


def data_tags(files: Sequence[DataFile]) -> dict[str, str]:
    tags = {
        "mlci.data": json.dumps(
            [{"path": f.path, "sha256": f.sha256, "size_bytes": f.size_bytes, "rows": f.rows} for f in files],
            separators=(",", ":"),
        )[:8000],
        "mlci.data.files": str(len(files)),
    }
    for f in files[:MAX_PER_FILE_DATA_TAGS]:
        key = f"mlci.data.{tag_safe(f.path)}"
        tags[f"{key}.sha256"] = f.sha256
        tags[f"{key}.size_bytes"] = str(f.size_bytes)
        if f.rows is not None:
            tags[f"{key}.rows"] = str(f.rows)
    return tags


FINGERPRINT_BASE_TAG = "mlci.fingerprint.base"
CACHE_INPUTS_TAG = "mlci.cache.inputs"


def run_tags(
    *,
    ci_tags: Mapping[str, str],
    fingerprint: str,
    command: Sequence[str] | str,
    image: str,
    data: Sequence[DataFile],
    code_mode: str,
    user: str = "",
    fingerprint_base: str = "",
    cache_inputs: Mapping[str, object] | None = None,
) -> dict[str, str]:
    tags = dict(ci_tags)
    if fingerprint_base:
        tags[FINGERPRINT_BASE_TAG] = fingerprint_base
    if cache_inputs is not None:
        # What the key was made of, so a later miss can say what changed (environment values only hashed).
        tags[CACHE_INPUTS_TAG] = json.dumps(cache_inputs, sort_keys=True, separators=(",", ":"), default=str)
    tags.update({
        "mlci.fingerprint": fingerprint,
        "mlci.command": command_text(command)[:5000],
        "mlci.code_hash_mode": code_mode,
        "mlflow.source.name": command_text(command)[:500],
    })
    if image:
        tags["mlci.image"] = image
    if ci_tags.get("mlci.gitlab.job_id"):
        tags["mlflow.source.type"] = "JOB"
    if user:
        tags["mlflow.user"] = user
    tags.update(data_tags(data))
    return tags


def default_run_name(flag: str | None, env: Mapping[str, str]) -> str | None:
    """--run-name, else the CI job name (a matrix job's name carries its values), else MLflow's."""
    return flag or env.get("CI_JOB_NAME") or None


def child_environment(
    base: Mapping[str, str],
    *,
    run_id: str,
    experiment_id: str,
    tracking_uri: str,
    params: Mapping[str, object],
    registry_uri: str | None = None,
) -> dict[str, str]:
    """The training command's environment: its own mlflow.log_* calls land in our run."""
    env = dict(base)
    env.update({
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLCI_RUN_ID": run_id,
        "MLCI_PARAMS_JSON": json.dumps(dict(params), sort_keys=True, default=str),
    })
    if registry_uri:
        env["MLFLOW_REGISTRY_URI"] = registry_uri
    # A piped Python child would block-buffer and the job log would stop being live.
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
