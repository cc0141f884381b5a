"""The promotion state machine: which version may go where, and where a rollback goes.

Pure functions over plain values, no registry and no I/O. The command fetches
the version's tags and markers plus the environment's audit history, asks this
module for a plan, runs the deploy target, and moves markers only when the
target reported success.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mlci.errors import CheckFailed, UsageError

CHAMPION = "champion"
CANDIDATE = "candidate"
VALIDATED_TAG = "mlci.validated"
# Markers with a meaning of their own; an environment may not be named after them.
RESERVED_MARKERS = frozenset({CHAMPION, CANDIDATE, "latest"})

DEPLOY = "deploy"
ROLLBACK = "rollback"
MARKER_MOVE = "move-marker"  # the registry adapter's record of every marker move


class PromotionRefused(CheckFailed):
    """The version may not move to that environment (exit 1): only blessed models move."""


@dataclass(frozen=True)
class VersionState:
    """What the state machine needs to know about one model version."""

    version: str
    validated: bool
    markers: tuple[str, ...] = ()

    @classmethod
    def from_tags(cls, version: str, tags: Mapping[str, str], markers: Iterable[str]) -> VersionState:
        return cls(version=version, validated=tags.get(VALIDATED_TAG, "").lower() == "true", markers=tuple(markers))


@dataclass(frozen=True)
class DeployPlan:
    environment: str
    version: str
    from_version: str | None
    markers: tuple[str, ...]  # moved, in this order, only after the target succeeded
    redeploy: bool  # the version already holds the marker: re-run the target (job retry), nothing moves


@dataclass(frozen=True)
class HistoryEntry:
    """One past change of an environment: who held it before and after."""

    action: str  # deploy | rollback | move (a marker move recorded by the registry adapter)
    from_version: str | None
    to_version: str
    when: str = ""


@dataclass(frozen=True)
class RollbackPlan:
    environment: str
    from_version: str
    to_version: str
    markers: tuple[str, ...]
    chosen_by: str  # "--to" or "audit trail"


def _index(environments: Sequence[str], environment: str) -> int:
    if environment not in environments:
        raise UsageError(
            f"unknown environment '{environment}'; configured environments: {', '.join(environments)}",
            hint="environments come from deploy.environments in mlci.yml (default: staging, production)",
        )
    return environments.index(environment)


def markers_for(environments: Sequence[str], environment: str) -> tuple[str, ...]:
    """The markers that follow a version into `environment`: champion rides with the last one."""
    index = _index(environments, environment)
    return (environment, CHAMPION) if index == len(environments) - 1 else (environment,)


def source_marker(environments: Sequence[str], environment: str) -> str:
    """The marker a version must hold to enter `environment` (also where the default version comes from)."""
    index = _index(environments, environment)
    return CANDIDATE if index == 0 else environments[index - 1]


# MLflow numbers versions 1, 2, ...; GitLab's model registry uses SemVer strings.
_VERSION = re.compile(r"\d+(\.\d+)*([-+][0-9A-Za-z.+-]+)?")


def choose_version(
    *, flag: str | None, env_value: str | None, marker: str, marker_holder: str | None
) -> tuple[str, str]:
    """(version, where it came from): --version, then MLCI_MODEL_VERSION (the gate's dotenv), then the marker."""
    for value, origin in ((flag, "--version"), (env_value, "MLCI_MODEL_VERSION")):
        if value is not None and value.strip():
            version = value.strip()
            if not _VERSION.fullmatch(version):
                # The registry would answer with an HTTP 400 (exit 3, "see the server's log"): it is the input.
                raise UsageError(
                    f"{origin} must be a registered model version number such as 3 (or 1.0.0 in GitLab's "
                    f"registry), got {version!r}",
                    hint="`mlci deploy` takes a version number; markers such as 'staging' are followed "
                         "without --version (each environment takes the previous environment's version)",
                )
            return version, origin
    if marker_holder:
        return marker_holder, f"holder of marker '{marker}'"
    raise UsageError(
        f"no version to deploy: no --version, no MLCI_MODEL_VERSION, and no version holds marker '{marker}'",
        hint="let the deploy job `needs:` the gate job so its dotenv passes MLCI_MODEL_VERSION, or pass --version",
    )


def plan_deploy(
    environments: Sequence[str],
    environment: str,
    candidate: VersionState,
    *,
    current_holder: str | None,
    gate_holder: str | None = None,
) -> DeployPlan:
    """Allow or refuse `candidate` going to `environment`.

    The first environment takes only gate-validated versions; each later one
    only the version that holds the previous environment's marker. Deploying
    the version an environment already runs is a re-deploy (a retried job).
    `gate_holder` (who holds the required marker now) only improves the message.
    """
    index = _index(environments, environment)
    markers = markers_for(environments, environment)
    version = candidate.version
    if current_holder == version:
        return DeployPlan(environment, version, current_holder, markers, redeploy=True)
    if index == 0:
        if not candidate.validated:
            raise PromotionRefused(
                f"refusing to deploy version {version} to '{environment}': it was not validated by the gate "
                f"(version tag {VALIDATED_TAG}=true is missing); only blessed versions are deployed",
                hint="run `mlci gate` on the version's training run, or deploy the version the gate passed",
            )
    else:
        required = environments[index - 1]
        if required not in candidate.markers:
            held_by = f"; it is held by version {gate_holder}" if gate_holder else "; no version holds it"
            raise PromotionRefused(
                f"refusing to deploy version {version} to '{environment}': it does not hold the "
                f"'{required}' marker{held_by}",
                hint=f"promote version {version} through '{required}' first (`mlci deploy --to {required}`)",
            )
    return DeployPlan(environment, version, current_holder, markers, redeploy=False)


def environment_history(records: Iterable[Mapping[str, object]], environment: str) -> list[HistoryEntry]:
    """The changes of one environment, oldest first, from audit records of any version.

    mlci's own records carry `environment` and `action`; the registry adapter's
    marker moves carry `marker`. Both count, so a marker moved by hand (or by a
    retrain job) still shows up in the history.
    """
    entries = []
    for record in records:
        to_version = record.get("to-version")
        if to_version in (None, ""):
            continue
        if record.get("action") in (DEPLOY, ROLLBACK) and record.get("environment") == environment:
            action = str(record["action"])
        elif record.get("action") == MARKER_MOVE and record.get("marker") == environment:
            action = "move"
        else:
            continue
        from_version = record.get("from-version")
        entries.append(
            HistoryEntry(
                action=action,
                from_version=None if from_version in (None, "") else str(from_version),
                to_version=str(to_version),
                when=str(record.get("when", "")),
            )
        )
    return entries


def plan_rollback(
    environments: Sequence[str],
    environment: str,
    *,
    current_holder: str | None,
    history: Sequence[HistoryEntry],
    requested: str | None = None,
) -> RollbackPlan:
    """Where `mlci rollback --env ENV [--to V]` goes.

    `--to` must name a version that held the environment before. Without it,
    walk the holders newest first and take the first one that is not the
    current holder and was not itself rolled back away from (unless it was
    deployed again afterwards): a second rollback goes one step further back
    instead of flipping between the two newest versions.
    """
    markers = markers_for(environments, environment)
    if not current_holder:
        raise PromotionRefused(
            f"nothing to roll back in '{environment}': no version holds the '{environment}' marker",
            hint=f"deploy a version first with `mlci deploy --to {environment}`",
        )
    # A holder that preceded the first recorded change is still a past holder.
    holders = [version for entry in history for version in (entry.from_version, entry.to_version) if version]
    past_holders = set(holders)
    if requested is not None:
        if requested == current_holder:
            raise PromotionRefused(f"version {requested} already holds '{environment}'; nothing to roll back")
        if requested not in past_holders:
            known = ", ".join(sorted(past_holders - {current_holder}, key=_version_key)) or "none"
            raise PromotionRefused(
                f"refusing to roll '{environment}' back to version {requested}: it never held the "
                f"'{environment}' marker (earlier holders: {known})",
                hint="rollback only returns to versions that ran in this environment; use `mlci deploy` otherwise",
            )
        return RollbackPlan(environment, current_holder, requested, markers, chosen_by="--to")

    rejected: set[str] = set()
    for entry in history:
        if entry.action == ROLLBACK and entry.from_version:
            rejected.add(entry.from_version)
        elif entry.action != ROLLBACK:
            rejected.discard(entry.to_version)
    for version in reversed(holders):
        if version != current_holder and version not in rejected:
            return RollbackPlan(environment, current_holder, version, markers, chosen_by="audit trail")
    raise PromotionRefused(
        f"nothing to roll back to in '{environment}': the audit trail records no earlier version than "
        f"{current_holder}",
        hint="pass --to VERSION with a version that ran in this environment before",
    )


def _version_key(version: str) -> tuple:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)
