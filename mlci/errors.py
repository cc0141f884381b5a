"""One error hierarchy; cli.main maps it to exit codes and nothing else does.

Exit codes: 0 ok, 1 a check or gate failed, 2 usage or config error,
3 an external service (GitLab, MLflow, a model server) failed.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2
EXIT_EXTERNAL = 3


class MlciError(Exception):
    """Base of every error mlci raises on purpose. `hint` says what to do next."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(MlciError):
    """Bad mlci.yml, contract, flag or input file. `location` is 'file:line[:col]'."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None):
        super().__init__(f"{location}: {message}" if location else message, hint=hint)
        self.location = location
        self.detail = message


class ConfigErrors(ConfigError):
    """Several config problems at once, so a user fixes them in one round."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(e.message for e in errors))


class UsageError(ConfigError):
    """Wrong command-line usage."""


class CheckFailed(MlciError):
    """A data check, smoke test or other verification did not pass."""

    exit_code = EXIT_CHECK_FAILED


class GateFailed(CheckFailed):
    """The model gate blocked the candidate."""


class ExternalServiceError(MlciError):
    """GitLab, MLflow or a model server failed or refused us.

    The message always names the URL and, when there was one, the HTTP status.
    """

    exit_code = EXIT_EXTERNAL

    def __init__(
        self,
        service: str,
        url: str,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
    ):
        status_part = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{service} {url}{status_part}: {message}", hint=hint)
        self.service = service
        self.url = url
        self.status = status
