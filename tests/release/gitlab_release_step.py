"""What GitLab runs for a job's `release:` keyword, rebuilt for the tests.

gitlab-ci-local ignores `release:`, so the tests rebuild the step GitLab adds to
the job (GitLab 18: lib/gitlab/ci/build/releaser.rb): with glab >= 1.58 on PATH,
`glab auth login` with the job token, then `glab release create` with the keyword's
values as double-quoted shell words; without it, `release-cli create`. The tests
run that step in bash against stand-ins and check the arguments that arrive.
"""

from __future__ import annotations

import json

GLAB_REQUIRED_VERSION = "1.58.0"


def _json_word(value) -> str:
    # GitLab writes the links as a JSON string encoded once more as JSON: a double-quoted shell word.
    return json.dumps(json.dumps(value, separators=(",", ":")))


def glab_command(release: dict) -> str:
    tag = release.get("tag_name") or "$CI_COMMIT_TAG"
    ref = release.get("ref") or "$CI_COMMIT_SHA"
    parts = [f'glab release create -R $CI_PROJECT_PATH "{tag}"']
    links = (release.get("assets") or {}).get("links") or []
    if links:
        parts.append(f"--assets-links {_json_word(links)}")
    if release.get("milestones"):
        parts.append(f'--milestone "{",".join(release["milestones"])}"')
    if release.get("name"):
        parts.append(f'--name "{release["name"]}"')
    if release.get("description"):
        parts.append(f'--experimental-notes-text-or-file "{release["description"]}"')
    parts.append(f'--ref "{ref}"')
    for key in ("tag_message", "released_at"):
        if release.get(key):
            parts.append(f'--{key.replace("_", "-")} "{release[key]}"')
    parts.append("--no-update --no-close-milestone")
    return " ".join(parts)


def release_cli_command(release: dict) -> str:
    parts = ["release-cli create"]
    for key in ("name", "description", "tag_name", "tag_message", "ref", "released_at"):
        if key in release:
            parts.append(f'--{key.replace("_", "-")} "{release[key]}"')
    for milestone in release.get("milestones") or []:
        parts.append(f'--milestone "{milestone}"')
    for link in (release.get("assets") or {}).get("links") or []:
        parts.append(f"--assets-link {_json_word(link)}")
    return " ".join(parts)


def unix_step(release: dict) -> str:
    return f"""if command -v glab >/dev/null 2>&1; then
  if [ "$(printf "%s\\n%s" "{GLAB_REQUIRED_VERSION}" "$(glab --version | grep -oE '[0-9]+\\.[0-9]+\\.[0-9]+')" \
| sort -V | head -n1)" = "{GLAB_REQUIRED_VERSION}" ]; then
    export GITLAB_HOST=$CI_SERVER_URL
    glab auth login --job-token $CI_JOB_TOKEN --hostname "$CI_SERVER_FQDN" --api-protocol $CI_SERVER_PROTOCOL
    {glab_command(release)}
  else
    echo "glab is older than {GLAB_REQUIRED_VERSION}"
    {release_cli_command(release)}
  fi
else
  {release_cli_command(release)}
fi
"""
