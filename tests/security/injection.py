"""Shared pieces of the shell-injection tests: payloads and recording stubs.

Two places write job scripts: `mlci retrain decide` (the child pipeline,
tests/retrain/test_child_pipeline_injection.py) and `mlci generate` (the templates,
tests/generate/test_script_injection.py). Both are run for real with these
payloads; `mlci` and `python` are stubs that record what they were given. A
payload "executes" when it creates its marker file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# {m} is the marker file a payload would create if it ran.
PAYLOADS = {
    "semicolon": "python train.py; touch {m}",
    "and": "python train.py && touch {m}",
    "pipe": "python train.py | touch {m}",
    "or": "false || touch {m}",
    "newline": "python train.py\ntouch {m}",
    "command substitution": "python train.py --name $(touch {m})",
    "backticks": "python train.py --name `touch {m}`",
    "double quotes": 'python train.py --name "a b"; touch {m}; echo "',
    "single quotes": "python train.py --name 'a b'; touch {m}; echo '",
    "escaped quote": 'python train.py --x \\"; touch {m}; \\"',
    "variable reference": "python train.py --token ${{CI_JOB_TOKEN}} $CI_JOB_TOKEN",
    "everything": "a\"b'c; touch {m} && touch {m} | touch {m} $(touch {m}) `touch {m}` ${{CI_JOB_TOKEN}}\ntouch {m}",
}
JOB_TOKEN = "job-token-that-must-not-appear"

STUB = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps({{"tool": {tool!r}, "argv": sys.argv[1:],
                          "env": {{k: v for k, v in os.environ.items() if k.startswith("MLCI_")}}}}) + "\\n")
if sys.argv[1:] == ["--version"]:
    print("mlci 0.0.0 (stub)")
"""


def stubs(directory: Path, log: Path) -> Path:
    """`mlci` and `python` that record their arguments and mlci's variables, then succeed."""
    directory.mkdir(parents=True, exist_ok=True)
    for tool in ("mlci", "python"):
        path = directory / tool
        path.write_text(STUB.format(python=sys.executable, log=str(log), tool=tool))
        path.chmod(0o755)
    return directory


def recorded(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
