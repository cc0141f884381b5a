"""Uploaded plots stay in the instance and are linked absolutely, sub-path included once."""

from __future__ import annotations

import pytest
import requests

from mlci.errors import ConfigError


@pytest.fixture
def plot(tmp_path):
    path = tmp_path / "metric-history.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake-png-bytes")
    return path


@pytest.mark.parametrize("style", ["modern", "legacy", "url-only"])
@pytest.mark.parametrize("base_path", ["", "/gitlab"])
def test_upload_link_is_absolute_and_serves_the_file(fake_gitlab_factory, make_client, plot, style, base_path):
    fake = fake_gitlab_factory(base_path=base_path, upload_style=style)
    upload = make_client(fake).upload(plot)

    assert upload.url.startswith(fake.url + "/")
    assert upload.url.endswith("/metric-history.png")
    assert upload.url.count("/gitlab/") == (1 if base_path else 0)
    assert upload.markdown == f"![metric-history]({upload.url})"
    assert requests.get(upload.url, timeout=5).content == plot.read_bytes()
    sent = fake.requests_to("POST", r"/uploads$")[0]
    assert sent.files["file"] == plot.read_bytes()


def test_modern_full_path_is_kept_as_returned(fake_gitlab, client, plot):
    upload = client.upload(plot)
    assert upload.full_path.startswith("/-/project/42/uploads/")
    assert upload.url == fake_gitlab.url + upload.full_path


@pytest.mark.parametrize(
    ("server", "link", "expected"),
    [
        ("https://host/gitlab", "/-/project/1/uploads/s/a.png", "https://host/gitlab/-/project/1/uploads/s/a.png"),
        # A GitLab that already put its relative root into full_path must not get it twice.
        ("https://host/gitlab", "/gitlab/-/project/1/uploads/s/a.png", "https://host/gitlab/-/project/1/uploads/s/a.png"),
        ("https://host", "/g/p/uploads/s/a.png", "https://host/g/p/uploads/s/a.png"),
        ("https://host/gitlab", "https://cdn.host/x.png", "https://cdn.host/x.png"),
    ],
)
def test_absolute_link_building(make_client, fake_gitlab, server, link, expected):
    assert make_client(fake_gitlab, url=server)._absolute(link) == expected


def test_upload_retry_resends_the_whole_file(fake_gitlab, client, plot):
    fake_gitlab.fail_next(r"/uploads$", 503)
    upload = client.upload(plot)
    assert requests.get(upload.url, timeout=5).content == plot.read_bytes()
    assert [r.status for r in fake_gitlab.requests_to("POST", r"/uploads$")] == [503, 201]


def test_uploading_a_missing_file_is_a_config_error(client, tmp_path):
    with pytest.raises(ConfigError):
        client.upload(tmp_path / "nope.png")
