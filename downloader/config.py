"""Settings: defaults < config file (TOML) < environment < flags, in one frozen model."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from downloader.errors import ConfigError, UsageError
from downloader.select import Selection, split_types

DEFAULT_API_URL: Final = "https://api.skop.dev"
ENV_VARS: Final = {"api_key": "SKOP_API_KEY", "api_url": "SKOP_API_URL"}

Seconds = Annotated[float, Field(gt=0.0)]


class Settings(BaseModel):
    """Everything a run needs to know, after every source has been merged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str = DEFAULT_API_URL
    api_key: SecretStr | None = None
    jobs: tuple[str, ...] = ()
    jobs_file: Path | None = None
    out: Path = Path("docs")
    layout: Literal["flat", "job", "type"] = "flat"
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    type: tuple[str, ...] = ()
    exclude_type: tuple[str, ...] = ()
    max_size_mb: Annotated[float, Field(gt=0.0)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    per_host: Annotated[int, Field(ge=1, le=64)] = 4
    retries: Annotated[int, Field(ge=0, le=50)] = 5
    retry_base: Seconds = 0.5
    retry_cap: Seconds = 30.0
    max_retry_wait: Seconds = 120.0
    connect_timeout: Seconds = 30.0
    read_timeout: Seconds = 120.0
    verify: bool = False
    refresh: bool = False
    wait: bool = False
    wait_interval: Seconds = 15.0
    wait_timeout: Seconds = 3600.0
    wait_lock: bool = False
    keep_mismatched: bool = False
    public_only: bool = False
    no_space_check: bool = False
    quiet: bool = False
    log_format: Literal["text", "json"] = "text"
    summary_file: Path | None = None

    @property
    def selection(self) -> Selection:
        """The document filters of these settings."""
        return Selection(
            min_confidence=self.min_confidence,
            types=self.type,
            exclude_types=self.exclude_type,
            max_size_mb=self.max_size_mb,
        )


FILE_KEYS: Final = frozenset(Settings.model_fields)


def load_settings(
    *,
    flags: Mapping[str, Any],
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources; ``flags`` holds only the options given on the command line."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged |= read_config_file(config_file)
    environ = os.environ if environ is None else environ
    merged |= {key: environ[var] for key, var in ENV_VARS.items() if environ.get(var)}
    merged |= {key: value for key, value in flags.items() if value is not None}
    merged = _normalise_types(merged)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        msg = describe_validation_error(exc, prefix="--", dashes=True)
        raise UsageError(msg) from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys of a TOML config file, checked against the settings model."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        msg = f"config file '{path}' not found: check --config"
        raise ConfigError(msg) from exc
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read config file '{path}': {exc}"
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"config file '{path}' is not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        known = ", ".join(sorted(FILE_KEYS))
        msg = f"config file '{path}': unknown key '{unknown[0]}' (known keys: {known})"
        raise ConfigError(msg)
    data = _normalise_types(data)
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        msg = f"config file '{path}': {describe_validation_error(exc, prefix='', dashes=False)}"
        raise ConfigError(msg) from exc
    return data


def read_jobs_file(path: Path) -> list[str]:
    """Job ids from a file (or stdin for ``-``): one per line, ``#`` starts a comment."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read --jobs-file '{path}': {getattr(exc, 'strerror', None) or exc}"
        raise UsageError(msg) from exc
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _normalise_types(data: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the selection's type rules (comma lists, case, leading dots) to both keys."""
    result = dict(data)
    for key in ("type", "exclude_type"):
        value = result.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            result[key] = split_types(value)
    return result


def describe_validation_error(exc: ValidationError, *, prefix: str, dashes: bool) -> str:
    """One line naming the first bad field and what was wrong with it."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "value"
    if dashes:
        field = field.replace("_", "-")
    given = error.get("input")
    secret = "key" in field
    shown = "" if secret or isinstance(given, dict | list) else f" (got {given!r:.60})"
    return f"{prefix}{field}: {error['msg']}{shown}"
