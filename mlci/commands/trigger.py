"""`mlci trigger`: ask GitLab for a retraining pipeline (from Airflow, an alert webhook, a data event)."""

from __future__ import annotations

import json
import re

from mlci.errors import UsageError

_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def configure(parser) -> None:
    parser.add_argument("--ref", help="branch or tag to run (default: $CI_DEFAULT_BRANCH, else main)")
    parser.add_argument(
        "--variable", action="append", default=[], metavar="KEY=VALUE",
        help="pipeline variable, repeatable; MLCI_PIPELINE=retrain is set unless you give MLCI_PIPELINE",
    )
    parser.add_argument(
        "--api", choices=["trigger", "pipelines"],
        help="trigger: pipeline trigger token from $MLCI_TRIGGER_TOKEN; pipelines: the API token "
        "($MLCI_GITLAB_TOKEN). Default: trigger when a trigger token is set, else pipelines",
    )
    parser.add_argument("--format", choices=["text", "json"], default="text")


def parse_variables(items: list[str]) -> dict[str, str]:
    variables = {"MLCI_PIPELINE": "retrain"}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _VARIABLE_NAME.match(key):
            raise UsageError(f"--variable expects KEY=VALUE with KEY made of letters, digits and '_', got {item!r}")
        variables[key] = value
    return variables


def start_pipeline(config, env, *, variables: dict[str, str], ref: str | None = None, api: str | None = None):
    """Start a pipeline through the trigger API (trigger token) or the pipelines API (API token).

    Returns (PipelineRef, api used, ref). Also used by `mlci monitor` to start retraining.
    """
    from mlci.adapters.gitlab import DEFAULT_TRIGGER_TOKEN_VARIABLE, SERVICE, GitLabClient
    from mlci.errors import ExternalServiceError

    token_variable = config.get("gitlab", "trigger-token-variable") or DEFAULT_TRIGGER_TOKEN_VARIABLE
    trigger_token = env.get(token_variable, "")
    api = api or ("trigger" if trigger_token else "pipelines")
    ref = ref or env.get("CI_DEFAULT_BRANCH") or "main"
    if api == "trigger":
        client = GitLabClient.from_config(config, env, require_token=False)
        if not trigger_token:
            raise ExternalServiceError(
                SERVICE, f"{client.api_url}{client.project_api_path}/trigger/pipeline",
                f"no pipeline trigger token: {token_variable} is not set",
                hint="create one under Settings > CI/CD > Pipeline trigger tokens and export it as "
                f"{token_variable}, or use --api pipelines with a project access token",
            )
        pipeline = client.trigger_pipeline(ref, variables, trigger_token, token_variable)
    else:
        client = GitLabClient.from_config(config, env)
        pipeline = client.create_pipeline(ref, variables)
    return pipeline, api, ref


def run(args, ctx) -> int:
    variables = parse_variables(args.variable)
    pipeline, api, ref = start_pipeline(ctx.config(), ctx.env, variables=variables, ref=args.ref, api=args.api)
    if args.format == "json":
        ctx.info(json.dumps({"version": 1, "id": pipeline.id, "web_url": pipeline.web_url, "ref": ref, "api": api,
                             "variables": sorted(variables)}))
    else:
        ctx.info(f"started pipeline #{pipeline.id} on {ref} through the {api} API "
                 f"(variables: {', '.join(sorted(variables))})")
        ctx.info(pipeline.web_url)
    return 0
