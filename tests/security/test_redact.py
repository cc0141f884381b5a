"""The redaction layer: every secret form, in every encoding, through every sink type."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import quote

import pytest

from mlci.redact import (
    MASK,
    LineRedactor,
    RedactingTextStream,
    Redactor,
    credential_free_url,
    is_secret_name,
    redact,
    secret_names,
)

SECRET = "s3cr3t-Canary_value+/="


# Forms recognisable without knowing the value: (text, the part that must disappear).
PATTERN_FORMS = [
    ("MLflow http://alice:hunter2pw@mlflow.internal:5000/api", "hunter2pw"),
    ("clone https://oauth2:glpat-abcdefgh1234@gitlab.example.com/g/p.git", "glpat-abcdefgh1234"),
    ("push https://ghp_tokenonlyvalue99@github.com/x.git", "ghp_tokenonlyvalue99"),
    ("postgres://user:db-pa55word@db:5432/x", "db-pa55word"),
    ("http://u:p%40ss%3Aword@h/x", "p%40ss%3Aword"),
    ("GET https://h/api/v4/projects?private_token=priv8tok3n&per_page=100", "priv8tok3n"),
    ("https://h/x?access_token=acc3ss-tok&y=1", "acc3ss-tok"),
    ("https://h/x?a=1&token=plaintok99", "plaintok99"),
    ("https://h/x?api_key=k3y-v4lue", "k3y-v4lue"),
    ("https://b.s3.amazonaws.com/o?X-Amz-Signature=abcdef0123&X-Amz-Credential=AKIAX", "abcdef0123"),
    ("<a href=\"https://h/x?a=1&amp;token=htmltok77\">", "htmltok77"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig123", "eyJhbGciOiJIUzI1NiJ9"),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("PRIVATE-TOKEN: my-private-tok3n", "my-private-tok3n"),
    ("{'JOB-TOKEN': 'job-tok3n-val'}", "job-tok3n-val"),
    ('{"Private-Token": "json-tok3n-val"}', "json-tok3n-val"),
    ("curl -H 'X-Gitlab-Token: hook-s3cret'", "hook-s3cret"),
    ("sent Bearer abcdefgh12345678 upstream", "abcdefgh12345678"),
    ("token glpat-xxxxxxxxxxxxxxxxxxxx in a message", "xxxxxxxxxxxxxxxxxxxx"),
    ("trigger glptt-0123456789abcdef", "0123456789abcdef"),
]


@pytest.mark.parametrize(("text", "secret"), PATTERN_FORMS)
def test_every_recognisable_secret_form_is_masked_without_knowing_the_value(text, secret):
    out = Redactor()(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize("text", [
    "use basic authentication or a bearer token",
    "MLflow http://127.0.0.1:5000/#/experiments/1/runs/abc",
    "write to user@example.com",
    "the PRIVATE-TOKEN header is missing",
    "https://gitlab.example.com/g/p/-/merge_requests/1?view=parallel",
])
def test_ordinary_text_is_left_alone(text):
    assert Redactor()(text) == text


@pytest.mark.parametrize("name", [
    "MLCI_GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_JOB_JWT_V2", "MLFLOW_TRACKING_PASSWORD", "HF_TOKEN", "DB_PASSWORD",
    "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "MY_SERVICE_SECRET", "ldap_passwd", "MLCI_VAULT_ID_TOKEN",
    "MLCI_DEPLOY_CREDENTIALS", "CI_DEPENDENCY_PROXY_PASSWORD",
])
def test_secret_variable_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["MLCI_REPORT_KEY", "CI_PROJECT_ID", "PATH", "MLFLOW_TRACKING_URI", "TOKENIZERS"])
def test_ordinary_variable_names(name):
    assert not is_secret_name(name)


def test_no_mlci_setting_is_mistaken_for_a_secret_by_its_variable_name():
    """A config key whose MLCI_* variable ends like a secret would mask its own value everywhere."""
    from mlci.config.effective import _scalar_leaves, env_name
    from mlci.config.schema import full_schema

    holds_credentials = {"MLCI_TUNE_STORAGE"}  # a database URL with its password: masked on purpose
    for path, _ in _scalar_leaves(full_schema()):
        name = env_name(path)
        if name in holds_credentials:
            assert is_secret_name(name)
            continue
        assert not is_secret_name(name), f"{name} would be masked; add it to NOT_SECRET_ENV_VARS or rename the key"


def test_masked_variables_listed_by_name_are_secrets_whatever_their_name():
    env = {"MLCI_MASKED_VARIABLES": "WAREHOUSE_DSN, SLACK_HOOK", "WAREHOUSE_DSN": "dsn-value-123",
           "SLACK_HOOK": "hook-value-456", "OTHER": "plain-value-789"}
    assert secret_names(env) == ["SLACK_HOOK", "WAREHOUSE_DSN"]
    text = redact("dsn-value-123 hook-value-456 plain-value-789", env=env)
    assert text == f"{MASK} {MASK} plain-value-789"


@pytest.mark.parametrize("encode", [
    lambda v: v,
    lambda v: json.dumps({"x": v}),
    lambda v: quote(v, safe=""),
    lambda v: f"https://h/x?q={quote(v, safe='')}",
    lambda v: f"prefix{v}suffix",
])
def test_secret_values_are_masked_in_every_encoding(encode):
    env = {"DEPLOY_TOKEN": SECRET + '"\\'}
    out = redact(encode(SECRET + '"\\'), env=env)
    assert SECRET not in out and quote(SECRET, safe="") not in out


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own():
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\nCq9x8yKLm0PqRsTuVwXyZ01234567\n-----END KEY-----"
    out = redact("line 2 printed alone: Cq9x8yKLm0PqRsTuVwXyZ01234567", env={"SSH_PRIVATE_KEY": key})
    assert "Cq9x8yKLm0" not in out


def test_short_values_are_not_masked_so_words_survive():
    assert redact("the run is on", env={"X_TOKEN": "on"}) == "the run is on"


@pytest.mark.parametrize(("url", "expected"), [
    ("http://u:pw@host:5000/mlflow?token=abc&x=1#f", "http://host:5000/mlflow?x=1#f"),
    ("https://mlflow.example.com/", "https://mlflow.example.com/"),
    ("sqlite:////abs/path/mlflow.db", "sqlite:////abs/path/mlflow.db"),
    ("https://h/?private_token=a&access_token=b", "https://h/"),
])
def test_credential_free_url_drops_userinfo_and_credential_parameters(url, expected):
    assert credential_free_url(url) == expected


def test_line_redactor_never_lets_a_secret_through_whatever_the_chunk_boundaries():
    redactor = Redactor([SECRET])
    text = f"epoch 1 {SECRET} done\rprogress 50%\rprogress 100%\nlast {SECRET}".encode()
    for cut in range(1, len(text)):
        seen: list[bytes] = []
        stream = LineRedactor(seen.append, redactor)
        stream.write(text[:cut])
        stream.write(text[cut:])
        stream.flush()
        joined = b"".join(seen)
        assert SECRET.encode() not in joined, cut
        assert joined.count(MASK.encode()) == 2


def test_line_redactor_passes_complete_lines_and_progress_returns_at_once():
    seen: list[bytes] = []
    stream = LineRedactor(seen.append, Redactor())
    stream.write(b"step 1\rstep 2\rpartial")
    assert b"".join(seen) == b"step 1\rstep 2\r"
    stream.flush()
    assert b"".join(seen).endswith(b"partial")


def test_line_redactor_keeps_bytes_that_are_not_utf8():
    seen: list[bytes] = []
    stream = LineRedactor(seen.append, Redactor())
    stream.write(b"\xff\xfe binary\n")
    assert b"".join(seen) == b"\xff\xfe binary\n"


def test_redacting_text_stream_masks_text_and_bytes_written_through_it():
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    stream = RedactingTextStream(text, Redactor([SECRET]))
    print(f"a {SECRET}", file=stream)
    stream.buffer.write(f"b {SECRET}\n".encode())
    stream.write("c http://u:pw123456@h/")
    stream.flush()
    stream.buffer.flush()
    out = raw.getvalue().decode()
    assert SECRET not in out and "pw123456" not in out and out.count(MASK) == 3


def test_atomic_write_masks_text_but_leaves_binary_files_byte_for_byte(tmp_path, monkeypatch):
    from mlci.outputs import atomic_write, write_json

    monkeypatch.setenv("UPLOAD_TOKEN", SECRET)
    write_json(tmp_path / "a.json", {"url": f"http://u:{SECRET}@h/", "note": SECRET})
    assert SECRET not in (tmp_path / "a.json").read_text()
    assert json.loads((tmp_path / "a.json").read_text())["url"] == f"http://u:{MASK}@h/"
    png = b"\x89PNG\r\n\x1a\n" + SECRET.encode() + b"\xff\x00"
    atomic_write(tmp_path / "p.png", png)
    assert (tmp_path / "p.png").read_bytes() == png


def test_an_internal_error_traceback_is_redacted(monkeypatch, capsys, tmp_path):
    """A bug must not print a secret through Python's traceback either."""
    import mlci.commands.config as config_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLCI_GITLAB_TOKEN", SECRET)

    def boom(args, ctx):
        raise RuntimeError(f"failed talking to http://bot:{SECRET}@gitlab/ with {SECRET}")

    monkeypatch.setattr(config_command, "run", boom)
    from mlci.cli import main

    assert main(["config", "show"]) == 1
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "internal error (RuntimeError)" in err and re.search(r"Traceback", err)
