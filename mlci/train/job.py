"""Gathering what `mlci train` needs before it decides between a cache hit and a real run."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlci.errors import ConfigError, ConfigErrors, UsageError
from mlci.train.environment import user_environment
from mlci.train.fingerprint import CacheKey, DataFile, FingerprintInputs, cache_key
from mlci.train.lineage import MATRIX_PARAM_PREFIX, effective_params
from mlci.train.settings import TrainSettings
from mlci.train.sources import (
    IRRELEVANT_PATTERNS,
    CodeHashes,
    describe_data_file,
    expand_data_patterns,
    hash_code_paths,
)

# The names MLflow accepts for params and metrics; checked here so a bad name is a
# located config error, not an HTTP 400 halfway through opening the run.
MLFLOW_NAME = re.compile(r"^[/\w.\- :]{1,250}$")


@dataclass(frozen=True)
class Prepared:
    command: list[str] | str
    params: dict[str, object]
    data: list[tuple[Path, DataFile]]
    code: CodeHashes
    key: CacheKey

    @property
    def code_mode(self) -> str:
        return self.code.mode

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint


def resolve_command(cli_command: Sequence[str], settings: TrainSettings, config) -> list[str] | str:
    argv = list(cli_command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    command: list[str] | str | None = argv or settings.command
    if not command:
        raise UsageError(
            "no training command",
            hint="pass it after `mlci train --` (e.g. mlci train -- python train.py) or set train.command in mlci.yml",
        )
    if isinstance(command, list):
        program = command[0]
        if os.sep not in program and shutil.which(program) is None:
            where = "" if argv else f"{config.where(('train', 'command'))}: "
            raise UsageError(f"{where}training command not found: {program!r}",
                             hint="is it installed in the job's image, and on PATH?")
        if os.sep in program and not os.access(program, os.X_OK):
            raise UsageError(f"training command is not an executable file: {program!r}")
    return command


def prepare(
    settings: TrainSettings,
    config,
    command: list[str] | str,
    env: Mapping[str, str],
    *,
    cwd: Path,
    exclude: Sequence[Path],
) -> Prepared:
    """Hash code and data and compute the cache key; every missing input is reported at once.

    The config file itself is never code: only its train: settings decide a model, and those that do
    (command, params, data, image, code-paths) are inputs of the key on their own.
    """
    problems: list[ConfigError] = []
    config_file = [config.path] if getattr(config, "path", None) else []
    code = hash_code_paths(settings.code_paths, cwd, exclude=[*exclude, *config_file],
                           irrelevant=[*IRRELEVANT_PATTERNS, *settings.cache_exclude])
    for spec in code.missing:
        index = settings.code_paths.index(spec)
        problems.append(config.error(("train", "code-paths", index), f"code path {spec!r} does not exist"))
    for key in settings.params:
        if not MLFLOW_NAME.match(str(key)):
            problems.append(ConfigError(
                f"param name {key!r} is not accepted by MLflow",
                location=config.where(("train", "params", key), key=True),
                hint="use letters, digits and _ - . / : or spaces",
            ))
    files, unmatched = expand_data_patterns(settings.data, cwd)
    for index in unmatched:
        problems.append(config.error(
            ("train", "data", index), f"data path {settings.data[index]!r} matches no file",
            hint="declared data must exist when training starts (fetch it in an earlier job or a hook)",
        ))
    if problems:
        raise ConfigErrors(problems)
    data = [(path, describe_data_file(path, cwd)) for path in files]
    params = effective_params(settings.params, env, settings.matrix_variables)
    secret_names = config.secret_variables() if hasattr(config, "secret_variables") else []
    environment = user_environment(
        env, ignore=settings.cache_env_ignore, also_secret=secret_names,
        params=[*settings.matrix_variables, *(n for n in env if n.startswith(MATRIX_PARAM_PREFIX))],
    )
    key = cache_key(FingerprintInputs(
        code=code.files, data=[d for _, d in data], params=params, image=settings.image, command=command,
        env=environment,
    ))
    return Prepared(command=command, params=params, data=data, code=code, key=key)
