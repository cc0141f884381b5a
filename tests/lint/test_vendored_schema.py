"""mlci ships GitLab's CI schema so `mlci lint` needs no check-jsonschema at run time;
check-jsonschema (a dev dependency) stays the source of truth for that copy."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load_refresh_script():
    import importlib.util

    script = REPO / "scripts" / "refresh_gitlab_schema.py"
    spec = importlib.util.spec_from_file_location("refresh_gitlab_schema", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_schema_is_check_jsonschemas_current_copy():
    refresh = _load_refresh_script()
    upstream_schema, upstream_license, version = refresh.upstream()
    shipped = resources.files("mlci.lint").joinpath("gitlab-ci.schema.json").read_bytes()
    assert shipped == upstream_schema, "run `python scripts/refresh_gitlab_schema.py` and commit the result"
    assert resources.files("mlci.lint").joinpath("LICENSE.gitlab-ci-schema").read_bytes() == upstream_license
    origin = json.loads(resources.files("mlci.lint").joinpath("gitlab-ci.schema.origin.json").read_text())
    assert origin == refresh.origin_record(shipped, version)
    assert origin["sha256"] == hashlib.sha256(shipped).hexdigest()


def test_lint_works_without_check_jsonschema(tmp_path):
    """The schema check must not import check-jsonschema: the core install does not have it."""
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text("job:\n  script: [echo hi]\n  when: sometimes\n")
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'check_jsonschema':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mlci.cli import main\n"
        f"sys.exit(main(['lint', {str(pipeline)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "when" in done.stdout + done.stderr
