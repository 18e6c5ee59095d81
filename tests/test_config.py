"""Settings: defaults < config file < environment < flags, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from downloader.config import DEFAULT_API_URL, load_settings
from downloader.errors import ConfigError, UsageError


def write(tmp_path: Path, text: str) -> Path:
    """A config file with ``text``."""
    path = tmp_path / "fetch-docs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    """With nothing given, the documented defaults apply."""
    settings = load_settings(flags={}, environ={})
    assert settings.api_url == DEFAULT_API_URL
    assert settings.api_key is None
    assert (settings.concurrency, settings.per_host, settings.retries) == (8, 4, 5)
    assert settings.out == Path("docs")


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    """A flag beats the environment, which beats the file, which beats the default."""
    config = write(tmp_path, 'api_url = "http://file"\napi_key = "sk-file1"\nconcurrency = 3\n')
    environ = {"SKOP_API_URL": "http://env", "SKOP_API_KEY": "sk-env1"}
    settings = load_settings(flags={"api_url": "http://flag"}, config_file=config, environ=environ)
    assert settings.api_url == "http://flag"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk-env1"
    assert settings.concurrency == 3


def test_types_from_file_and_flags_are_normalised(tmp_path: Path) -> None:
    """Types accept lists, comma strings, case and leading dots, in the file and flags."""
    config = write(tmp_path, 'type = ["PDF", ".docx,txt"]\nexclude_type = "Xlsx"\n')
    settings = load_settings(flags={}, config_file=config, environ={})
    assert settings.type == ("pdf", "docx", "txt")
    assert settings.selection.exclude_types == ("xlsx",)
    flagged = load_settings(flags={"type": ["pdf,DOC"]}, environ={})
    assert flagged.selection.types == ("pdf", "doc")


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    """A typo in the file is an error naming the key and listing the known ones."""
    config = write(tmp_path, "min_confidnce = 0.8\n")
    with pytest.raises(ConfigError, match=r"unknown key 'min_confidnce'.*min_confidence"):
        load_settings(flags={}, config_file=config, environ={})


def test_bad_value_in_file_is_named(tmp_path: Path) -> None:
    """A value of the wrong range names the key and the file."""
    config = write(tmp_path, "min_confidence = 1.5\n")
    with pytest.raises(
        ConfigError, match=r"fetch-docs.toml': min_confidence: .*less than or equal to 1"
    ):
        load_settings(flags={}, config_file=config, environ={})


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    """Broken TOML and a missing file are config errors, exit code 2."""
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_settings(flags={}, config_file=write(tmp_path, "concurrency = = 3"), environ={})
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="not found"):
        load_settings(flags={}, config_file=tmp_path / "missing.toml", environ={})


def test_bad_flag_value_is_named_with_dashes() -> None:
    """A flag value out of range is reported as the flag the user typed."""
    with pytest.raises(UsageError, match=r"^--per-host: .*greater than or equal to 1 \(got 0\)"):
        load_settings(flags={"per_host": 0}, environ={})


def test_secret_is_never_echoed(tmp_path: Path) -> None:
    """A bad api_key value is reported without showing it."""
    config = write(tmp_path, "api_key = 12345678\n")
    with pytest.raises(ConfigError) as info:
        load_settings(flags={}, config_file=config, environ={})
    assert "12345678" not in str(info.value)
    settings = load_settings(flags={"api_key": "sk-topsecret"}, environ={})
    assert "topsecret" not in repr(settings)
