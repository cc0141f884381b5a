"""What every command gets: config access, output directory, printing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlci.redact import redact

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any, TextIO


class Context:
    """`secrets` are values to mask in every printed line besides the known secret variables (e.g. a
    database URL from mlci.yml). Streams and env default to the process's at construction."""

    def __init__(self, config_path: Path | None = None, out_dir: Path = Path("mlci-out"),
                 overrides: list[str] | None = None, quiet: bool = False, env: dict[str, str] | None = None,
                 stdout: TextIO | None = None, stderr: TextIO | None = None,
                 secrets: list[str] | None = None) -> None:
        self.config_path = config_path
        self.out_dir = out_dir
        self.overrides = [] if overrides is None else overrides
        self.quiet = quiet
        self.env = dict(os.environ) if env is None else env
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.secrets = [] if secrets is None else secrets
        self._config: Any = None

    @classmethod
    def from_args(cls, args) -> Context:
        env = dict(os.environ)
        config_path = args.config or env.get("MLCI_CONFIG")
        out_dir = args.out_dir or env.get("MLCI_OUT_DIR") or "mlci-out"
        return cls(
            config_path=Path(config_path) if config_path else None,
            out_dir=Path(out_dir),
            overrides=list(args.overrides or []),
            quiet=bool(args.quiet),
            env=env,
        )

    def config(self, flags: dict[tuple[str, ...], Any] | None = None, *, required: bool = False):
        """The effective config (defaults < CI_* < file < MLCI_* env < --set/flags).

        A missing ./mlci.yml is fine unless `required`; an explicit --config
        that does not exist is always an error.
        """
        from mlci.config import load_effective

        if self._config is None or flags:
            cfg = load_effective(
                self.config_path,
                env=self.env,
                overrides=self.overrides,
                flags=flags or {},
                required=required,
            )
            from mlci.redact import register_secret_variables

            register_secret_variables(cfg.secret_variables(), self.env)
            if flags:
                return cfg
            self._config = cfg
        return self._config

    def out_path(self, name: str) -> Path:
        return self.out_dir / name

    def info(self, text: str) -> None:
        if not self.quiet:
            print(redact(text, extra=self.secrets, env=self.env), file=self.stdout, flush=True)

    def warn(self, text: str) -> None:
        print(redact(f"mlci: warning: {text}", extra=self.secrets, env=self.env), file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print(redact(f"mlci: error: {text}", extra=self.secrets, env=self.env), file=self.stderr, flush=True)
