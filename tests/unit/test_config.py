from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from oauth_server.cli import main
from oauth_server.config import ConfigError, Settings, load_settings, redact_url, settings_table


def test_readme_configuration_table_is_current() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert settings_table() in readme


def test_defaults() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.access_token_ttl) == ("127.0.0.1", 8889, 3600)
    assert settings.public_issuer == "http://localhost:8889"
    assert settings.seed_demo_data
    assert (settings.authorization_code_ttl, settings.refresh_reuse_grace) == (60, 0)
    assert (settings.refresh_token_idle_ttl, settings.refresh_token_max_ttl) == (
        14 * 86_400,
        90 * 86_400,
    )
    assert (settings.session_ttl, settings.interaction_ttl) == (7 * 86_400, 1800)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OAUTH_SERVER_PORT": "0"}, "OAUTH_SERVER_PORT"),
        ({"OAUTH_SERVER_PORT": "http"}, "OAUTH_SERVER_PORT"),
        ({"OAUTH_SERVER_ENV": "staging"}, "OAUTH_SERVER_ENV"),
        ({"OAUTH_SERVER_ISSUER": "ftp://x"}, "OAUTH_SERVER_ISSUER"),
        ({"OAUTH_SERVER_ISSUER": "https://x/?a=b"}, "query"),
        ({"OAUTH_SERVER_DATABASE_URL": "mysql://x"}, "OAUTH_SERVER_DATABASE_URL"),
        ({"OAUTH_SERVER_ACCESS_TOKEN_TTL": "5"}, "OAUTH_SERVER_ACCESS_TOKEN_TTL"),
        ({"OAUTH_SERVER_SECRET_KEY": "short"}, "at least 32"),
        ({"OAUTH_SERVER_SIGNING_ALG": "HS256"}, "OAUTH_SERVER_SIGNING_ALG"),
        ({"OAUTH_SERVER_RESOURCE": "urn:x"}, "OAUTH_SERVER_RESOURCE"),
        ({"OAUTH_SERVER_AUTHORIZATION_CODE_TTL": "601"}, "OAUTH_SERVER_AUTHORIZATION_CODE_TTL"),
        ({"OAUTH_SERVER_REFRESH_REUSE_GRACE": "-1"}, "OAUTH_SERVER_REFRESH_REUSE_GRACE"),
        (
            {
                "OAUTH_SERVER_REFRESH_TOKEN_IDLE_TTL": "7200",
                "OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL": "3600",
            },
            "must not exceed OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL",
        ),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_production_seeds_no_demo_data_by_default() -> None:
    # The production refusals themselves are the self-check's: tests/unit/test_selfcheck.py.
    assert not Settings(env="production").seed_demo_data
    assert Settings(env="development").seed_demo_data


def test_issuer_trailing_slash_is_dropped() -> None:
    assert Settings(issuer="https://auth.example/").public_issuer == "https://auth.example"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///var/oauth_server.db", "sqlite:///var/oauth_server.db"),
        ("postgresql://app@db/oauth", "postgresql://app@db/oauth"),
        ("postgresql://app:s3cr3t@db:5432/oauth", "postgresql://app:***@db:5432/oauth"),
        ("postgresql://app:p%40ss@db/oauth", "postgresql://app:***@db/oauth"),
        ("postgresql://app:p@ss@db/oauth", "postgresql://app:***@db/oauth"),  # unencoded @
        (
            "postgresql://db/oauth?password=s3cr3t&ssl=on",
            "postgresql://db/oauth?password=***&ssl=on",
        ),
        ("postgresql://app:s3cr3t@/oauth?host=/run/pg", "postgresql://app:***@/oauth?host=/run/pg"),
        ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
        ("http://[::1", "<unparseable URL>"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_with_passwords_are_not_in_the_settings_repr() -> None:
    settings = Settings(
        database_url="postgresql://app:s3cr3t@db/oauth", redis_url="redis://:s3cr3t@cache/0"
    )
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings)


def test_argon2_memory_cost_covers_every_lane() -> None:
    with pytest.raises(ConfigError, match="8 KiB for each"):
        load_settings(password_hash_memory_cost=16, password_hash_parallelism=4)


def test_the_config_command_prints_the_readme_table() -> None:
    """README: "`oauth-server config` prints this table"."""
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == settings_table().strip()
