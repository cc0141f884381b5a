"""What `mlci lint` reports: findings with a rule id, a severity and a file:line."""

from __future__ import annotations

from collections import namedtuple

from mlci.lint.source import Location

# severity: error | warning | info; codequality: GitLab Code Quality's info | minor | major | critical | blocker
Rule = namedtuple("Rule", "id name severity summary codequality")


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in [
        Rule("MLCI001", "gpu-job-unbounded", "error",
             "a GPU-tagged job needs `timeout` and `interruptible`, or an idle or superseded run holds the GPU",
             "major"),
        Rule("MLCI002", "production-deploy-unguarded", "error",
             "a production deploy job needs `when: manual`, a `resource_group` and an `environment`", "critical"),
        Rule("MLCI003", "image-unpinned", "warning",
             "an image without a tag, or tagged `:latest`, changes under you: pin a version or digest", "minor"),
        Rule("MLCI004", "token-literal", "error",
             "a secret-looking literal in `variables:` ends up in the repository; use a masked CI/CD variable",
             "critical"),
        Rule("MLCI005", "needs-unknown-job", "error", "`needs:` names a job that does not exist", "major"),
        Rule("MLCI006", "schedule-rule-missing", "warning",
             "a job meant for scheduled pipelines has no schedule rule, so it runs on every push", "minor"),
        Rule("MLCI010", "schema", "error", "the configuration does not match GitLab's CI schema", "major"),
        Rule("MLCI011", "include", "error", "an include cannot be resolved", "major"),
        Rule("MLCI012", "inputs", "error", "inputs do not match the included file's `spec:inputs`", "major"),
        Rule("MLCI013", "interpolation", "error", "an `$[[ ]]` interpolation block is invalid", "major"),
        Rule("MLCI014", "extends", "error", "`extends` or `!reference` points at something that does not exist",
             "major"),
        Rule("MLCI015", "duplicate-key", "warning", "a key appears twice in one mapping; GitLab keeps the last",
             "minor"),
        Rule("MLCI016", "include-not-checked", "info",
             "a project, remote, template or component include is not fetched offline (use --server)", "info"),
        Rule("MLCI017", "server-lint", "error", "GitLab's CI lint API rejected the configuration", "major"),
        Rule("MLCI018", "job-script-missing", "error",
             "a job needs `script`, `run` or `trigger` after extends; GitLab rejects the pipeline otherwise", "major"),
        Rule("MLCI020", "mlci-config", "error", "mlci.yml does not match its schema", "major"),
        Rule("MLCI021", "mlci-config-unused", "warning",
             "mlci.yml configures a stage that no included template runs", "minor"),
        Rule("MLCI022", "mlci-config-missing", "error",
             "an included template needs mlci.yml settings that are not there", "major"),
        Rule("MLCI030", "runner-pool-missing", "error",
             "a training or GPU job's tags are served by no runner pool declared in mlci.yml", "critical"),
        Rule("MLCI031", "runner-pool-unused", "warning", "a runner pool in mlci.yml serves no job of the pipeline",
             "minor"),
        Rule("MLCI032", "runner-pool-limits", "error",
             "a job asks its runner pool for more than the pool allows (resource requests, timeout)", "major"),
    ]
}


class Finding(namedtuple("Finding", "rule message file line column job severity", defaults=(1, None, "error"))):
    """One problem at file:line:column; `rule` is the rule's name, e.g. gpu-job-unbounded."""

    __slots__ = ()

    @classmethod
    def make(cls, rule: str, message: str, location: Location, *, job: str | None = None,
             severity: str | None = None) -> Finding:
        return cls(rule, message, location.file, location.line, location.column, job,
                   severity or RULES[rule].severity)

    @property
    def rule_id(self) -> str:
        return RULES[self.rule].id

    def fingerprint(self) -> str:
        """Stable across unrelated edits: rule, file, job and message, not the line number."""
        key = "\0".join([self.rule, self.file, self.job or "", self.message])
        import hashlib

        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.rule_id, self.message)
