"""The PostgreSQL harness gives a server that answers SQL with the credentials in its URL."""

import subprocess


def test_postgres_server_answers_on_its_url(postgres_server):
    url = postgres_server.create_database("harness_check")
    assert url.startswith("postgresql://mlci:") and url.endswith("/harness_check")
    out = subprocess.run(["psql", url, "-tAc", "select 41 + 1"], capture_output=True, text=True)
    assert out.stdout.strip() == "42", out.stderr
