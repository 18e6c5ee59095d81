"""The code base keeps its own rules: ruff, mypy --strict, and a config example that loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from downloader.config import FILE_KEYS, load_settings

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "config.example.toml"


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a dev tool from this interpreter's environment, bounded in time."""
    if shutil.which(args[0], path=str(Path(sys.executable).parent)) is None:
        pytest.skip(f"{args[0]} is not installed: pip install -e '.[dev]'")
    return subprocess.run(
        [str(Path(sys.executable).parent / args[0]), *args[1:]],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def test_ruff_is_clean() -> None:
    """`ruff check` passes on the package, tests and benchmarks."""
    result = run_tool("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """`mypy --strict downloader` passes."""
    result = run_tool("mypy", "--strict", "downloader")
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_example_loads_and_documents_every_key() -> None:
    """config.example.toml is valid and names every settings key (commented out or set)."""
    load_settings(flags={}, config_file=EXAMPLE, environ={})
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = "\n".join(line.lstrip("# ") for line in text.splitlines())
    documented = set(tomllib.loads(_only_assignments(uncommented)))
    assert documented == FILE_KEYS


def _only_assignments(text: str) -> str:
    """The ``key = value`` lines of ``text``."""
    return "\n".join(
        line
        for line in text.splitlines()
        if "=" in line and line.split("=")[0].strip().isidentifier()
    )
