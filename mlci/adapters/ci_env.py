"""GitLab's predefined CI/CD variables, read once into a typed value.

Everything that needs to know "which pipeline/job/commit is this" reads a
CiEnv instead of os.environ, so the core stays testable without a runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CiEnv:
    server_url: str = ""
    project_id: str = ""
    project_path: str = ""
    project_url: str = ""
    commit_sha: str = ""
    commit_ref: str = ""
    commit_branch: str = ""
    commit_tag: str = ""
    default_branch: str = ""
    pipeline_id: str = ""
    pipeline_url: str = ""
    pipeline_source: str = ""
    job_id: str = ""
    job_name: str = ""
    job_url: str = ""
    mr_iid: str = ""
    mr_target_branch: str = ""
    mr_source_branch: str = ""
    user_login: str = ""
    runner_description: str = ""
    environment_name: str = ""

    @property
    def in_ci(self) -> bool:
        return bool(self.pipeline_id or self.job_id)

    @property
    def is_merge_request(self) -> bool:
        return bool(self.mr_iid)

    def lineage_tags(self) -> dict[str, str]:
        """MLflow tags that tie a run or model version to this pipeline and job.

        `gitlab.CI_JOB_ID` is the tag GitLab's own MLflow UI uses to link a run
        to its CI job.
        """
        tags = {
            "mlci.gitlab.project": self.project_path,
            "mlci.gitlab.commit": self.commit_sha,
            "mlci.gitlab.ref": self.commit_ref,
            "mlci.gitlab.pipeline_id": self.pipeline_id,
            "mlci.gitlab.pipeline_url": self.pipeline_url,
            "mlci.gitlab.job_id": self.job_id,
            "mlci.gitlab.job_url": self.job_url,
            "mlci.gitlab.mr_iid": self.mr_iid,
            "mlci.gitlab.runner": self.runner_description,
            "mlci.gitlab.user": self.user_login,
            "gitlab.CI_JOB_ID": self.job_id,
            "mlflow.source.git.commit": self.commit_sha,
        }
        return {k: v for k, v in tags.items() if v}

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


_VARIABLES = {
    "server_url": "CI_SERVER_URL",
    "project_id": "CI_PROJECT_ID",
    "project_path": "CI_PROJECT_PATH",
    "project_url": "CI_PROJECT_URL",
    "commit_sha": "CI_COMMIT_SHA",
    "commit_ref": "CI_COMMIT_REF_NAME",
    "commit_branch": "CI_COMMIT_BRANCH",
    "commit_tag": "CI_COMMIT_TAG",
    "default_branch": "CI_DEFAULT_BRANCH",
    "pipeline_id": "CI_PIPELINE_ID",
    "pipeline_url": "CI_PIPELINE_URL",
    "pipeline_source": "CI_PIPELINE_SOURCE",
    "job_id": "CI_JOB_ID",
    "job_name": "CI_JOB_NAME",
    "job_url": "CI_JOB_URL",
    "mr_iid": "CI_MERGE_REQUEST_IID",
    "mr_target_branch": "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
    "mr_source_branch": "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "user_login": "GITLAB_USER_LOGIN",
    "runner_description": "CI_RUNNER_DESCRIPTION",
    "environment_name": "CI_ENVIRONMENT_NAME",
}


def read_ci_env(env: Mapping[str, str] | None = None) -> CiEnv:
    env = os.environ if env is None else env
    return CiEnv(**{field: env.get(var, "") for field, var in _VARIABLES.items()})
