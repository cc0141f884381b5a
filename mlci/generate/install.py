"""The install step: how mlci gets into a CI job before its script runs.

Every template job and every job of a retraining child pipeline runs this one
POSIX shell step, so it lives here once. It reads only variables:

- MLCI_INSTALL       auto | uv | pip | preinstalled. Each job sets it from its
                     template's `install` input; a CI/CD or pipeline variable of
                     the same name overrides it in every job at once.
- MLCI_INSTALL_SPEC  the requirement for mlci itself; empty means
                     mlci==<component version, else the version the templates were generated with>.
- MLCI_INDEX_URL     the package index that serves mlci (the hosting project's
                     GitLab PyPI registry by default); empty: the image's default index.
- MLCI_EXTRA         the extra of the job's command (data, train, ...), set by the template;
                     empty: the core alone.

mlci comes from MLCI_INDEX_URL alone, without dependencies; its extra's
dependencies come from the image's normal index (PyPI or the runner's mirror
through PIP_INDEX_URL / UV_INDEX_URL). So a dependency can never be swapped
for a same-named package on the other index, and the hosting project needs
no copy of PyPI. uv is used when it is on PATH (or, with `auto`, after
`pip install uv`, one wheel); pip is the fallback. A requirement that is
already satisfied (an image with mlci baked in) installs nothing.
"""

from __future__ import annotations

INSTALL_MODES = ("auto", "uv", "pip", "preinstalled")

INSTALL_STEP = r"""# mlci install step (MLCI_INSTALL: auto | uv | pip | preinstalled)
mlci_spec="${MLCI_INSTALL_SPEC:-mlci==${MLCI_COMPONENT_VERSION:-$MLCI_VERSION}}"
case "$mlci_spec" in
  mlci|mlci[=\<\>~!]*) mlci_with_extra="mlci${MLCI_EXTRA:+[$MLCI_EXTRA]}${mlci_spec#mlci}" ;;
  *) mlci_with_extra="mlci${MLCI_EXTRA:+[$MLCI_EXTRA]}" ;;
esac
case "${MLCI_INSTALL:-auto}" in
  preinstalled) ;;
  auto|uv|pip)
    if [ "${MLCI_INSTALL:-auto}" != pip ] && ! command -v uv >/dev/null 2>&1; then
      python -m pip install --quiet uv || [ "${MLCI_INSTALL:-auto}" = auto ] || exit 1
    fi
    if [ "${MLCI_INSTALL:-auto}" != pip ] && command -v uv >/dev/null 2>&1; then
      set -- uv pip install --quiet --python "$(command -v python)"
    else
      set -- python -m pip install --quiet
    fi
    echo "mlci: $1 installs $mlci_spec${MLCI_INDEX_URL:+ from the mlci package index}, then $mlci_with_extra"
    "$@" --no-deps ${MLCI_INDEX_URL:+--index-url "$MLCI_INDEX_URL"} "$mlci_spec" || exit 1
    "$@" "$mlci_with_extra" || exit 1
    ;;
  *) echo "mlci: MLCI_INSTALL must be auto, uv, pip or preinstalled, not '$MLCI_INSTALL'" >&2; exit 2 ;;
esac
mlci --version"""


def install_step() -> str:
    """The install step as one shell entry for `before_script:`."""
    return INSTALL_STEP
