"""Which environment variables a training run depends on, recorded without their values.

A training script may read anything from its environment (`ALPHA=0.1 python train.py`), so the
run cache treats every variable a person set as an input: its name and a digest of its value go
into the cache key, and the run records them (tag `mlci.cache.inputs`), so a miss can name the
variable that changed. Left out: what GitLab, the runner, the shell, the container or mlci itself
set (they differ between jobs without changing a model), caches and certificate paths, secrets
(their values must not be hashed into a tag that outlives them) and names the user ignores
(`train.cache-env-ignore`).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Mapping

from mlci.redact import is_secret_name, masked_variable_names

DIGEST_CHARS = 16

SYSTEM_PREFIXES = (
    # GitLab and its runners
    "CI_", "GITLAB_", "RUNNER_", "FF_", "KUBERNETES_", "DOCKER_", "BUILDKIT_", "SERVICE_", "CHAT_", "GIT_",
    # mlci and the tools it drives (their settings are in the key through the config)
    "MLCI_", "MLFLOW_", "PIP_", "UV_", "PYTEST_", "COV_", "COVERAGE_",
    # shells, terminals, desktops, package managers
    "LC_", "XDG_", "SSH_", "SUDO_", "DBUS_", "VSCODE_", "TERM_", "TMUX", "ITERM", "KITTY_", "WSL", "CONDA_",
    "PYENV_", "NVM_", "npm_", "HOMEBREW_", "JUPYTER_", "JPY_", "DEBIAN_", "GPG_", "ZSH", "BASH_", "NVIDIA_",
    "NV_", "LESS",
)
SYSTEM_NAMES = frozenset({
    "PATH", "HOME", "USER", "USERNAME", "LOGNAME", "SHELL", "PWD", "OLDPWD", "SHLVL", "HOSTNAME", "HOST",
    "HOSTTYPE", "OSTYPE", "MACHTYPE", "TMPDIR", "TMP", "TEMP", "LANG", "LANGUAGE", "TZ", "_", "MAIL", "EDITOR",
    "VISUAL", "PAGER", "DISPLAY", "LS_COLORS", "LSCOLORS", "PS1", "PS2", "PS4", "PROMPT_COMMAND", "HISTFILE",
    "HISTSIZE", "HISTCONTROL", "MANPATH", "INFOPATH", "TERM", "COLORTERM", "COLUMNS", "LINES", "CLICOLOR",
    "FORCE_COLOR", "NO_COLOR", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONPATH", "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "PYTHON_VERSION", "PYTHON_SHA256", "PYTHON_PIP_VERSION",
    "PYTHON_GET_PIP_URL", "PYTHON_GET_PIP_SHA256", "PYTHON_SETUPTOOLS_VERSION", "LD_LIBRARY_PATH", "LIBRARY_PATH",
    "CUDA_VERSION", "CUDA_HOME", "CUDNN_VERSION", "NCCL_VERSION", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
    "SSL_CERT_DIR", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "HF_HOME", "HF_DATASETS_CACHE",
    "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "TORCH_HOME", "XDG_CACHE_HOME", "KERAS_HOME", "MPLCONFIGDIR",
    "MPLBACKEND", "DO_NOT_TRACK", "CONFIG_FILE", "ARTIFACT_DOWNLOAD_ATTEMPTS", "GET_SOURCES_ATTEMPTS",
    "RESTORE_CACHE_ATTEMPTS", "EXECUTOR_JOB_SECTION_ATTEMPTS", "TRANSFER_METER_FREQUENCY",
    "CACHE_COMPRESSION_LEVEL", "ARTIFACT_COMPRESSION_LEVEL", "CACHE_REQUEST_TIMEOUT", "TRIGGER_PAYLOAD",
    "IS_SANDBOX", "CONTAINER_NAME", "container",
})


# Certificate bundles and proxies: how to reach a server, never what a model learns.
SYSTEM_PARTS = ("CA_BUNDLE", "CA_CERTS", "SSL_CERT", "SSL_ROOTS", "CERT_FILE", "CERT_DIR", "_PROXY")


def is_system_variable(name: str) -> bool:
    return name in SYSTEM_NAMES or name.startswith(SYSTEM_PREFIXES) or any(part in name for part in SYSTEM_PARTS)


def value_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:DIGEST_CHARS]


def user_environment(env: Mapping[str, str], *, ignore: Iterable[str] = (),
                     also_secret: Iterable[str] = (), params: Iterable[str] = ()) -> dict[str, str]:
    """Variable name -> digest of its value, for every variable a person set that can reach the model.

    `ignore` are names or globs (train.cache-env-ignore); `also_secret` are variables the config names
    as credentials; `params` are variables already in the key as training params.
    """
    ignore = tuple(ignore)
    skipped = masked_variable_names(env) | set(also_secret) | set(params)
    return {
        name: value_digest(value)
        for name, value in sorted(env.items())
        if name not in skipped
        and not is_system_variable(name)
        and not is_secret_name(name)
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in ignore)
    }
