"""The `web:` section as a user writes it in ledgersync.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.configfile import ConfigFileError
from engine.settings import load_config
from ledgersync.bootstrap import SECTIONS


def test_a_public_url_that_is_not_an_address_is_rejected_with_its_position(tmp_path: Path):
    path = tmp_path / "ledgersync.yaml"
    path.write_text("web:\n  port: 8123\n  public_url: sync.example.com\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, {}, SECTIONS)
    message = str(caught.value)
    assert "ledgersync.yaml:3:3: web.public_url:" in message
    assert "must be an absolute http(s) address such as https://sync.example.com" in message


def test_the_api_token_comes_from_the_environment_and_is_never_printed(tmp_path: Path):
    path = tmp_path / "ledgersync.yaml"
    path.write_text(
        "web:\n  public_url: https://sync.example.com/\n  api_token: {env: LEDGERSYNC_API_TOKEN}\n"
    )
    config = load_config(path, {"LEDGERSYNC_API_TOKEN": "tok-123456"}, SECTIONS)
    web = config.settings.web
    assert web.api_token is not None and web.api_token.get_secret_value() == "tok-123456"
    assert web.base_url == "https://sync.example.com" and "tok-123456" not in repr(config)


def test_an_oidc_section_is_checked_and_its_secret_never_printed(tmp_path: Path):
    path = tmp_path / "ledgersync.yaml"
    path.write_text("oidc:\n  issuer: http://idp.example.com\n  client_id: c\n  client_secret: {env: S}\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, {"S": "s3cret"}, SECTIONS)
    assert "oidc.issuer:" in str(caught.value) and "https address" in str(caught.value)
    path.write_text(
        "oidc:\n  issuer: https://accounts.google.com/\n  client_id: c\n  client_secret: {env: S}\n"
    )
    config = load_config(path, {"S": "s3cret"}, SECTIONS)
    assert config.sections["oidc"].issuer == "https://accounts.google.com"  # type: ignore[attr-defined]
    assert "s3cret" not in repr(config)
