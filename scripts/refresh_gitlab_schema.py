"""Copy GitLab's CI JSON schema from the installed check-jsonschema into mlci/lint/.

mlci ships the schema so that `mlci lint` works offline from the light core
install, without check-jsonschema and its dependencies. check-jsonschema stays
the source (a dev dependency): `tests/lint/test_vendored_schema.py` fails when
its copy moves on, and this script brings mlci's copy up to date.

    python scripts/refresh_gitlab_schema.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import metadata, resources
from pathlib import Path

LINT_DIR = Path(__file__).resolve().parents[1] / "mlci" / "lint"
VENDOR = "check_jsonschema.builtin_schemas.vendor"


def upstream() -> tuple[bytes, bytes, str]:
    """(schema bytes, license bytes, check-jsonschema version) as installed."""
    vendor = resources.files(VENDOR)
    schema = vendor.joinpath("gitlab-ci.json").read_bytes()
    license_text = vendor.joinpath("licenses", "LICENSE.gitlab").read_bytes()
    return schema, license_text, metadata.version("check-jsonschema")


def origin_record(schema: bytes, version: str) -> dict:
    return {"version": 1, "from": "check-jsonschema", "from-version": version,
            "sha256": hashlib.sha256(schema).hexdigest()}


def main() -> int:
    schema, license_text, version = upstream()
    (LINT_DIR / "gitlab-ci.schema.json").write_bytes(schema)
    (LINT_DIR / "LICENSE.gitlab-ci-schema").write_bytes(license_text)
    record = origin_record(schema, version)
    (LINT_DIR / "gitlab-ci.schema.origin.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"GitLab CI schema from check-jsonschema {version} (sha256 {record['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
