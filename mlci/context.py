"""What every command gets: config access, output directory, printing."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlci.redact import redact


@dataclass
class Context:
    config_path: Path | None = None
    out_dir: Path = Path("mlci-out")
    overrides: list[str] = field(default_factory=list)
    quiet: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    # Values to mask in every printed line besides the known secret variables (e.g. a database URL from mlci.yml).
    secrets: list[str] = field(default_factory=list)
    _config: Any = None

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
