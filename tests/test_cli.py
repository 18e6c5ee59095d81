"""The command as users run it: a real process, real exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from downloader.cli import build_demo_parser, build_parser
from downloader.demo import DEMO_API_KEY, DEMO_JOB_ID, Faults
from downloader.job import RunSummary
from downloader.manifest import MANIFEST_NAME, Manifest, load_manifest
from tests.conftest import CliResult, Server, StartServer, listing, one_job, run_cli

KEY_ENV = {"SKOP_API_KEY": DEMO_API_KEY}
README = Path(__file__).parent.parent / "README.md"


def assert_clean_error(result: CliResult, code: int, pattern: str) -> None:
    """Exit ``code``, exactly one stderr line matching ``pattern``, no traceback, no key."""
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr
    matching = [line for line in result.stderr.splitlines() if re.search(pattern, line)]
    assert len(matching) == 1, result.stderr
    assert DEMO_API_KEY not in result.stdout + result.stderr


async def test_success_exit_0_with_json_summary(demo: Server, tmp_path: Path) -> None:
    """A clean pull exits 0 and --json prints a summary that parses as the model."""
    result = await run_cli(
        DEMO_JOB_ID,
        "--api-url",
        demo.url,
        "--out",
        tmp_path,
        "--min-confidence",
        "0.8",
        "--json",
        env=KEY_ENV,
    )
    assert result.code == 0, result.stderr
    summary = RunSummary.model_validate_json(result.stdout)
    assert summary.downloaded == summary.selected > 0
    assert summary.download_seconds > 0
    manifest_text = (tmp_path / MANIFEST_NAME).read_text()
    Manifest.model_validate_json(manifest_text)
    assert DEMO_API_KEY not in result.stdout + result.stderr + manifest_text


async def test_summary_line_and_event_lines_without_tty(demo: Server, tmp_path: Path) -> None:
    """Without a terminal: no bar, one timestamped line per event, one summary line."""
    result = await run_cli(DEMO_JOB_ID, "--api-url", demo.url, "-o", tmp_path, env=KEY_ENV)
    assert result.code == 0
    assert re.fullmatch(
        r"11 selected, 11 downloaded: 11 new, 0 unchanged, 0 changed, 0 failed, 0 gone; "
        r".* in [\d.]+ s -> .*manifest.json\n",
        result.stdout,
    )
    events = result.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert all(re.match(rf"{stamp} (job|downloading|new) ", line) for line in events), events
    assert sum(" new " in line for line in events) == 11
    assert "\r" not in result.stderr


async def test_json_log_format_emits_one_object_per_event(demo: Server, tmp_path: Path) -> None:
    """--log-format json: every stderr line is a JSON object with time and event."""
    result = await run_cli(
        DEMO_JOB_ID, "--api-url", demo.url, "-o", tmp_path, "--log-format", "json", env=KEY_ENV
    )
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert {event["event"] for event in events} == {"job", "downloading", "new"}
    assert all("time" in event for event in events)
    assert DEMO_API_KEY not in result.stderr


async def test_quiet_prints_nothing_on_success(demo: Server, tmp_path: Path) -> None:
    """--quiet: no events, no summary line."""
    result = await run_cli(DEMO_JOB_ID, "--api-url", demo.url, "-o", tmp_path, "-q", env=KEY_ENV)
    assert (result.code, result.stdout, result.stderr) == (0, "", "")


async def test_some_documents_failed_exit_1(start_server: StartServer, tmp_path: Path) -> None:
    """One broken document gives exit 1, names it on stderr, and keeps the others."""
    server = await start_server(
        one_job(
            listing("/f/ok.pdf"),
            listing("/f/missing.pdf", faults=Faults(status=404)),
            job_id="job_mixed1",
        )
    )
    result = await run_cli("job_mixed1", "--api-url", server.url, "--out", tmp_path, env=KEY_ENV)
    assert result.code == 1
    assert re.search(r"Z failed missing.pdf: 404 Not Found for url", result.stderr)
    assert (tmp_path / "ok.pdf").exists()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["JOB-1"], r"invalid job id 'JOB-1'"),
        (["job_abc", "--min-confidence", "2"], r"--min-confidence: .*less than or equal to 1"),
        (["job_abc", "--concurrency", "many"], r"argument --concurrency: invalid int value"),
        ([], r"no job id: give job ids as arguments, with --jobs-file, or as jobs in the config"),
    ],
)
async def test_usage_errors_exit_2(args: list[str], pattern: str, tmp_path: Path) -> None:
    """Bad arguments give exit 2 with one line naming what was wrong."""
    result = await run_cli(*args, "--out", tmp_path, env=KEY_ENV)
    assert_clean_error(result, 2, pattern)


async def test_missing_and_malformed_key_exit_2_before_any_request(
    demo: Server, tmp_path: Path
) -> None:
    """No key, or a key of the wrong shape, fails before Skop is asked anything."""
    missing = await run_cli(DEMO_JOB_ID, "--api-url", demo.url, "--out", tmp_path)
    assert_clean_error(missing, 2, r"no Skop API key: set SKOP_API_KEY")
    malformed = await run_cli(
        DEMO_JOB_ID, "--api-url", demo.url, "--out", tmp_path, env={"SKOP_API_KEY": "pk-live-123"}
    )
    assert_clean_error(malformed, 2, r"API key is malformed")
    assert "pk-live-123" not in malformed.stderr
    assert sum(demo.state.hits.values()) == 0


async def test_config_file_errors_exit_2(demo: Server, tmp_path: Path) -> None:
    """An unknown key in --config is named, exit 2."""
    config = tmp_path / "c.toml"
    config.write_text("concurency = 4\n")
    result = await run_cli(DEMO_JOB_ID, "--config", config, env=KEY_ENV)
    assert_clean_error(result, 2, r"unknown key 'concurency'")


async def test_config_file_supplies_settings(demo: Server, tmp_path: Path) -> None:
    """Keys in --config apply when no flag or variable overrides them."""
    out = tmp_path / "from-config"
    config = tmp_path / "c.toml"
    config.write_text(f'api_url = "{demo.url}"\nout = "{out}"\ntype = ["docx"]\n')
    result = await run_cli(DEMO_JOB_ID, "--config", config, "--json", env=KEY_ENV)
    assert result.code == 0, result.stderr
    documents = load_manifest(out).documents.values()
    assert documents
    assert {d.document_type for d in documents} == {"docx"}


async def test_output_folder_unusable_exit_2(demo: Server, tmp_path: Path) -> None:
    """An --out that is a file is a clear error, exit 2."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = await run_cli(DEMO_JOB_ID, "--api-url", demo.url, "--out", blocker, env=KEY_ENV)
    assert_clean_error(result, 2, r"output folder|cannot read|cannot use")


@pytest.mark.parametrize(
    ("key", "job", "pattern"),
    [
        (
            "sk-wrong0",
            DEMO_JOB_ID,
            r"401 Unauthorized for url '.*/scrape/results/job_4fc79a89797e': .*check SKOP_API_KEY",
        ),
        (DEMO_API_KEY, "job_nosuchjob", r"job job_nosuchjob not found or access denied \(404"),
    ],
)
async def test_api_errors_exit_3(
    demo: Server, tmp_path: Path, key: str, job: str, pattern: str
) -> None:
    """A rejected key and an unknown job give exit 3 with the server's meaning."""
    result = await run_cli(job, "--api-url", demo.url, "--out", tmp_path, env={"SKOP_API_KEY": key})
    assert_clean_error(result, 3, pattern)
    assert "sk-wrong0" not in result.stderr


@pytest.mark.parametrize(
    ("fault", "pattern"),
    [
        ("500", r"500 Internal Server Error for url"),
        ("bad-json", r"the body is not valid JSON"),
        ("bad-schema", r"field documents\.\d+\.confidence_score: .*less than or equal to 1"),
    ],
)
async def test_bad_api_answers_exit_3(
    start_server: StartServer, tmp_path: Path, fault: str, pattern: str
) -> None:
    """A server error (after retries) and a broken body give exit 3 naming the problem."""
    listed = listing("/f/a.pdf", size=100)
    server = await start_server(one_job(listed, job_id="job_bad1", results_fault=fault))
    result = await run_cli(
        "job_bad1", "--api-url", server.url, "--out", tmp_path, "--retries", "2", env=KEY_ENV
    )
    assert_clean_error(result, 3, pattern)
    expected_tries = 3 if fault == "500" else 1
    assert server.state.hits["/scrape/results/job_bad1"] == expected_tries


async def test_api_unreachable_exit_3(tmp_path: Path) -> None:
    """Nothing listening at --api-url is exit 3 after retries, saying so."""
    result = await run_cli(
        DEMO_JOB_ID,
        "--api-url",
        "http://127.0.0.1:9",
        "--out",
        tmp_path,
        "--retries",
        "0",
        env=KEY_ENV,
    )
    assert_clean_error(result, 3, r"cannot reach Skop at 'http://127.0.0.1:9/scrape/results/")


@pytest.mark.parametrize("status", ["in_progress", "failed", "cancelled", "extracting"])
async def test_unfinished_job_exit_4(
    start_server: StartServer, tmp_path: Path, status: str
) -> None:
    """A job that is not completed gives exit 4 and says what to do."""
    server = await start_server(one_job(job_id="job_wip1", status=status))
    result = await run_cli("job_wip1", "--api-url", server.url, "--out", tmp_path, env=KEY_ENV)
    assert_clean_error(
        result, 4, rf"job job_wip1 is {status}, not completed.*: (try again|start a new)"
    )


async def test_dry_run_lists_targets(demo: Server, tmp_path: Path) -> None:
    """--dry-run prints type, score, size and target path per document, downloads nothing."""
    result = await run_cli(
        DEMO_JOB_ID, "--api-url", demo.url, "--out", tmp_path / "o", "--dry-run", env=KEY_ENV
    )
    assert result.code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[-1].endswith("documents selected (dry run: nothing downloaded)")
    assert any(re.match(r"pdf\s+0\.\d\d\s+[\d.]+ MB\s+\S.*\.pdf  <- ", line) for line in lines)
    assert demo.document_hits() == 0
    assert not (tmp_path / "o").exists()


async def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    """`fetch-docs demo` serves its own job on 127.0.0.1 and lands it, no key needed."""
    result = await run_cli("demo", "--out", tmp_path / "demo", "--json")
    assert result.code == 0, result.stderr
    summary = RunSummary.model_validate_json(result.stdout)
    assert summary.downloaded == summary.selected > 0
    assert "127.0.0.1" in result.stderr


async def test_version_and_module_entry_point() -> None:
    """`python -m downloader --version` prints the version."""
    result = await run_cli("--version")
    assert result.code == 0
    assert result.stdout.startswith("fetch-docs ")


def test_every_option_is_documented_in_the_readme() -> None:
    """Each flag of both parsers appears in README.md."""
    readme = README.read_text(encoding="utf-8")
    options = {
        option
        for parser in (build_parser(), build_demo_parser())
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    missing = sorted(option for option in options if f"`{option}" not in readme)
    assert not missing, f"undocumented options: {missing}"


def test_every_exit_code_is_documented_in_the_readme() -> None:
    """The README's exit-code table lists 0, 1, 2, 3, 4 and 130."""
    readme = README.read_text(encoding="utf-8")
    for code in ("0", "1", "2", "3", "4", "130"):
        assert re.search(rf"^\| `{code}` \|", readme, re.MULTILINE), code


def test_json_summary_is_json() -> None:
    """The summary model round-trips through JSON."""
    summary = RunSummary(out="x", jobs=[], selected=0)
    assert RunSummary.model_validate(json.loads(summary.model_dump_json())) == summary
