"""By-hand benchmark: fetch-docs against aria2c, curl and a naive aiohttp script.

Usage, from the repository root, with the Python that has fetch-docs installed::

    python bench/run.py [--scenario NAME ...] [--repeat N] [--markdown FILE]

Scenarios (default: all, in this order):

* ``small``   400 listed documents of 20-200 KiB, 40 ms before the first byte; the 185
              with confidence >= 0.8 are fetched, 16 at once.
* ``large``   6 documents of 150 MiB, then of 300 MiB, no latency, 6 at once.
* ``many``    10,000 documents of 2 KiB, 5 ms latency, 64 at once.
* ``scale``   ``fetch-docs --dry-run`` on jobs of 1k, 10k and 100k documents.
* ``rerun``   fetch-docs run again on the ``small`` job into the same folder.
* ``startup`` ``fetch-docs --version`` against ``python -c pass``.

Each scenario starts ``bench/server.py`` (the bundled demo server) in its own process on
127.0.0.1. fetch-docs is given the job id (it pays for the Skop API call and writes a
manifest); the peers are given the selected URLs directly. Every tool runs ``--repeat``
times (default 3) into a fresh folder, round-robin, and every file written is checked
against the sha256 of what the server serves. Tables go to stdout (Markdown), progress
to stderr; ``--markdown FILE`` also writes them with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import scenarios as sc
from harness import Server, demo_server
from measure import Measurement, median, rss_method, run_measured
from report import Cell, Section, machine_info, write_markdown
from tools import FETCH_DOCS, PEERS, Check, Job, Tool, check_folder, fetch_docs_command

MIB = 1024 * 1024
LEGEND = (
    "wall: median of the successful repeats, process start to exit; x fetch-docs: wall / "
    "fetch-docs' wall; MiB/s: document bytes / wall; peak RSS: largest resident set of the "
    "tool's process tree (median); CPU s: user + system of that tree (median); download "
    "phase: fetch-docs' own `download_seconds` (first document request to last byte)"
)
FAIRNESS = (
    "Peers (aria2c, curl, naive aiohttp) get the already-selected URL list; fetch-docs gets "
    "the job id, so its wall time also covers the Skop API call, selection, name "
    "sanitising, sha256 of every byte, sniffing and the manifest. Wall times include "
    "process start-up for every tool."
)


@dataclass
class Context:
    """What every scenario needs: settings, a scratch folder, the usable peers."""

    repeat: int
    scratch: Path
    peers: tuple[Tool, ...]

    def fresh_dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch))


@dataclass
class Runs:
    """The repeated runs of one tool on one document set."""

    tool: str
    measurements: list[Measurement] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    download: list[float] = field(default_factory=list)  # fetch-docs' download_seconds

    def ok(self) -> list[Measurement]:
        """The runs that exited 0 in time (all runs, if none did)."""
        return [m for m in self.measurements if m.ok] or self.measurements

    def med(self, attr: str) -> float:
        """Median of a Measurement field over the successful runs."""
        return median([getattr(m, attr) for m in self.ok()])

    def label(self) -> str:
        failed = sum(not m.ok for m in self.measurements)
        return f"{self.tool} (FAILED {failed}/{len(self.measurements)})" if failed else self.tool

    def worst_check(self) -> str:
        return str(min(self.checks, key=lambda c: (c.correct, -c.stray)))

    def failures(self) -> list[str]:
        return [
            f"{self.tool} run {i} FAILED ({'timed out' if m.timed_out else f'exit {m.returncode}'})"
            f": {last_words(m.stderr_tail)}"
            for i, m in enumerate(self.measurements, start=1)
            if not m.ok
        ]


def last_words(stderr: str) -> str:
    """The last two meaningful stderr lines (a traceback's last line names the error)."""
    lines = [line.strip(" |+-") for line in stderr.splitlines()]
    kept = [line for line in lines if line][-2:]
    return " / ".join(f"`{line[:200]}`" for line in kept) or "(no stderr)"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- transfers


def summary_json(measurement: Measurement) -> dict[str, object]:
    """fetch-docs' ``--json`` summary, or {} if stdout is not one."""
    try:
        body = json.loads(measurement.stdout)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def select_job(
    server: Server,
    job_id: str,
    expected: dict[str, str],
    *,
    concurrency: int,
    min_confidence: float | None = None,
) -> Job:
    """The Job every tool gets: the listing's URLs with confidence >= min, named by path."""
    pairs = []
    for document in server.listing(job_id):
        if min_confidence is not None and document["confidence_score"] < min_confidence:
            continue
        url = str(document["url"])
        pairs.append((url, PurePosixPath(unquote(urlsplit(url).path)).name))
    paths = {unquote(urlsplit(url).path) for url, _ in pairs}
    if paths != set(expected):
        raise RuntimeError(
            f"{job_id}: the listing selects {len(paths)} documents, the bench "
            f"expects {len(expected)}"
        )
    return Job(
        base_url=server.base_url,
        job_id=job_id,
        pairs=tuple(pairs),
        concurrency=concurrency,
        per_host=concurrency,
        min_confidence=min_confidence,
    )


def run_once(
    tool: Tool, job: Job, ctx: Context, expected: Collection[str], *, timeout: float
) -> tuple[Measurement, Check]:
    """One run of ``tool`` into a folder that exists only for it, checked then removed."""
    out, scratch = ctx.fresh_dir("out"), ctx.fresh_dir("input")
    try:
        measurement = run_measured(
            tool.build(job, out, scratch), timeout=timeout, env=tool.environment()
        )
        return measurement, check_folder(out, expected)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def compare(ctx: Context, job: Job, expected: dict[str, str], *, timeout: float) -> list[Runs]:
    """Every tool, ``repeat`` times each, round-robin (each round starts one tool later)."""
    tools = (FETCH_DOCS, *ctx.peers)
    runs = {tool.name: Runs(tool.name) for tool in tools}
    for attempt in range(1, ctx.repeat + 1):
        shift = (attempt - 1) % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            measurement, check = run_once(tool, job, ctx, expected.values(), timeout=timeout)
            record = runs[tool.name]
            record.measurements.append(measurement)
            record.checks.append(check)
            seconds = summary_json(measurement).get("download_seconds")
            if isinstance(seconds, int | float):
                record.download.append(float(seconds))
            log(
                f"  {tool.name:14} run {attempt}/{ctx.repeat}: {measurement.wall:6.2f} s, "
                f"{check}, rc {measurement.returncode}"
            )
    return list(runs.values())


@dataclass(frozen=True)
class Bound:
    """The latency-bound floor: documents x latency / concurrency + bytes / loopback."""

    documents: int
    latency: float
    concurrency: int
    total_bytes: int
    speed: float  # loopback bytes per second

    @property
    def seconds(self) -> float:
        wait = self.documents * self.latency / self.concurrency
        return wait + self.total_bytes / self.speed

    def describe(self) -> str:
        return (
            f"lower bound = {self.documents} x {self.latency * 1000:.0f} ms / "
            f"{self.concurrency} + {self.total_bytes / MIB:.1f} MiB / "
            f"{self.speed / MIB:.0f} MiB/s (curl, 200 MiB from the same server to /dev/null) "
            f"= {self.seconds:.3f} s"
        )


def _tool_row(record: Runs, *, reference: float, total_bytes: int) -> list[Cell]:
    wall, walls = record.med("wall"), [m.wall for m in record.ok()]
    download = median(record.download) if record.download else None
    return [record.label(), record.worst_check(), wall, f"{min(walls):.2f}-{max(walls):.2f}",
            wall / reference, total_bytes / MIB / wall, record.med("rss_mb"),
            record.med("cpu"), download]  # fmt: skip


def _against_bound(fetch_docs: Runs, bound: Bound) -> str:
    wall = fetch_docs.med("wall")
    text = f"fetch-docs: wall {wall:.3f} s = {wall / bound.seconds:.2f}x bound"
    if not fetch_docs.download:
        return text + "; no download phase reported (no --json summary)"
    download = median(fetch_docs.download)
    return text + f"; download phase {download:.3f} s = {download / bound.seconds:.2f}x bound"


def transfer_section(
    title: str, runs: list[Runs], *, total_bytes: int, bound: Bound | None = None
) -> Section:
    """The per-tool table of one document set."""
    reference = runs[0].med("wall")
    headers = ["tool", "files correct", "wall s (median)", "min-max s", "x fetch-docs",
               "MiB/s", "peak RSS MiB", "CPU s", "download phase s"]  # fmt: skip
    rows = [_tool_row(record, reference=reference, total_bytes=total_bytes) for record in runs]
    if bound:
        headers.append("wall x bound")
        for row, record in zip(rows, runs, strict=True):
            row.append(record.med("wall") / bound.seconds)
    notes = [failure for record in runs for failure in record.failures()]
    if bound:
        notes.append(bound.describe())
        notes.append(_against_bound(runs[0], bound))
    return Section(title, headers, rows, notes)


def latency_scenario(
    ctx: Context,
    *,
    title: str,
    spec: str,
    job_id: str,
    concurrency: int,
    latency: float,
    timeout: float,
    min_confidence: float | None = None,
) -> list[Section]:
    """small and many: compare the tools and set them against the lower bound."""
    documents = sc.build_state(spec).jobs[job_id].documents
    expected = sc.truth(documents, min_confidence=min_confidence or 0.0)
    total = sum(doc.size for doc in documents if doc.path in expected)
    with demo_server(spec) as server:
        job = select_job(
            server, job_id, expected, concurrency=concurrency, min_confidence=min_confidence
        )
        speed = server.loopback_speed()
        runs = compare(ctx, job, expected, timeout=timeout)
    bound = None if speed is None else Bound(len(expected), latency, concurrency, total, speed)
    section = transfer_section(title, runs, total_bytes=total, bound=bound)
    if speed is None:
        section.notes.append("no lower bound: curl is needed to measure loopback throughput")
    else:
        section.notes.append(
            "the bound leaves out the demo server's own CPU per request (one Python process, "
            "sharing the 2 cores with the client); the fastest peer shows the practical floor"
        )
    return [section]


def run_small(ctx: Context) -> list[Section]:
    return latency_scenario(
        ctx,
        title=f"small: {sc.SMALL_WANTED} of {sc.SMALL_COUNT} documents (20-200 KiB, "
        f"confidence >= 0.8), 40 ms latency, concurrency 16, per-host 16",
        spec="small",
        job_id=sc.SMALL_JOB,
        concurrency=16,
        latency=sc.SMALL_LATENCY,
        min_confidence=sc.SMALL_MIN_CONFIDENCE,
        timeout=60,
    )


def run_many(ctx: Context) -> list[Section]:
    return latency_scenario(
        ctx,
        title=f"many: {sc.MANY_COUNT:,} documents of 2 KiB, 5 ms latency, concurrency 64, "
        "per-host 64",
        spec="many",
        job_id=sc.MANY_JOB,
        concurrency=64,
        latency=sc.MANY_LATENCY,
        timeout=240,
    )


def run_large(ctx: Context) -> list[Section]:
    sections: list[Section] = []
    rss: dict[int, float] = {}
    for mib in (150, 300):
        spec = f"large:{mib}"
        state = sc.build_state(spec)
        expected = sc.truth(state.jobs[sc.LARGE_JOB].documents)
        del state  # 1.8 GiB at 300 MiB
        with demo_server(spec) as server:
            job = select_job(server, sc.LARGE_JOB, expected, concurrency=sc.LARGE_COUNT)
            runs = compare(ctx, job, expected, timeout=300)
        title = (
            f"large ({mib} MiB): {sc.LARGE_COUNT} documents of {mib} MiB, no latency, "
            f"concurrency {sc.LARGE_COUNT}"
        )
        total = sc.LARGE_COUNT * mib * MIB
        sections.append(transfer_section(title, runs, total_bytes=total))
        rss[mib] = runs[0].med("rss_mb")
    sections[-1].notes.append(
        f"fetch-docs peak RSS: {rss[150]:.1f} MiB with 150 MiB files, {rss[300]:.1f} MiB with "
        f"300 MiB files: difference {rss[300] - rss[150]:+.1f} MiB"
    )
    return sections


# --------------------------------------------------------------------------- fetch-docs only


_SELECTED = re.compile(r"^(\d+) documents selected", re.MULTILINE)


def run_scale(ctx: Context) -> list[Section]:
    rows: list[list[Cell]] = []
    walls: dict[int, float] = {}
    rss: dict[int, float] = {}
    with demo_server("scale") as server:
        for count in sc.SCALE_SIZES:
            job_id = sc.scale_job_id(count)
            job = Job(server.base_url, job_id, pairs=(), concurrency=8, per_host=4,
                      output=("--dry-run",))  # fmt: skip
            listing = server.curl_metric(f"/scrape/results/{job_id}", "time_total")
            results = [run_once(FETCH_DOCS, job, ctx, (), timeout=300) for _ in range(ctx.repeat)]
            done = [measurement for measurement, _ in results]
            found = [_SELECTED.search(m.stdout) for m in done]
            selected = min(int(match[1]) if match else 0 for match in found)
            written = max(check.stray for _, check in results)
            walls[count] = median([m.wall for m in done])
            rss[count] = median([m.rss_mb for m in done])
            cpu = median([m.cpu for m in done])
            row: list[Cell] = [f"{count:,}", f"{selected}/{count}", walls[count], cpu]
            rows.append([*row, rss[count], listing, written])
            log(f"  scale {count}: {walls[count]:.2f} s, {rss[count]:.0f} MiB")
    big, mid, small = sc.SCALE_SIZES[2], sc.SCALE_SIZES[1], sc.SCALE_SIZES[0]
    per_10k = (rss[big] - rss[small]) / ((big - small) / 10_000)
    notes = [
        f"wall 100k / 10k = {walls[big] / walls[mid]:.1f}x (linear would be 10x); "
        f"peak RSS 100k / 10k = {rss[big] / rss[mid]:.1f}x",
        f"peak RSS per 10k documents (slope from 1k to 100k) = {per_10k:.1f} MiB",
        "the listing column is the server's time to build and send the results body "
        "(curl, median), which fetch-docs' wall includes",
    ]
    headers = ["documents", "selected", "wall s (median)", "CPU s", "peak RSS MiB",
               "listing s (server)", "files written"]  # fmt: skip
    title = "scale: fetch-docs --dry-run on one job of 1k / 10k / 100k documents"
    return [Section(title, headers, rows, notes)]


def _rerun_row(label: str, measurement: Measurement, requests: int) -> list[Cell]:
    body = summary_json(measurement)
    counts = [body.get("downloaded"), body.get("already_present")]
    m = measurement
    return [label, m.wall, m.cpu, m.rss_mb, *map(_count, counts), requests, m.returncode]


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None


def run_rerun(ctx: Context) -> list[Section]:
    documents = sc.build_state("small").jobs[sc.SMALL_JOB].documents
    minimum = sc.SMALL_MIN_CONFIDENCE
    expected = sc.truth(documents, min_confidence=minimum)
    out = ctx.fresh_dir("rerun")
    rows: list[list[Cell]] = []
    walls: list[float] = []
    requests: list[int] = []
    with demo_server("small") as server:
        job = select_job(server, sc.SMALL_JOB, expected, concurrency=16, min_confidence=minimum)
        for attempt in range(ctx.repeat + 1):
            before = server.hits()
            command = FETCH_DOCS.build(job, out, out)
            measurement = run_measured(command, timeout=60, env=FETCH_DOCS.environment())
            hits = server.hits() - before
            label = "first run (not counted)" if attempt == 0 else f"rerun {attempt}"
            rows.append(_rerun_row(label, measurement, hits))
            if attempt:
                walls.append(measurement.wall)
                requests.append(hits)
            log(f"  {label}: {measurement.wall:.2f} s, {hits} document requests")
    notes = [
        f"rerun median wall {median(walls):.3f} s; document requests the server received "
        f"during the reruns: {sum(requests)} (should be 0)",
        f"folder after all runs: {check_folder(out, expected.values())} documents correct",
    ]
    headers = ["run", "wall s", "CPU s", "peak RSS MiB", "downloaded", "already present",
               "document requests", "exit"]  # fmt: skip
    title = "rerun: the small job again into the same folder (nothing new to fetch)"
    return [Section(title, headers, rows, notes)]


def run_startup(_ctx: Context) -> list[Section]:
    commands = {
        "fetch-docs --version": [*fetch_docs_command(), "--version"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    rows: list[list[Cell]] = []
    walls: list[float] = []
    for label, command in commands.items():
        done = [run_measured(command, timeout=30) for _ in range(10)]
        ms = [m.wall * 1000 for m in done]
        walls.append(median(ms))
        rows.append([label, median(ms), min(ms), median([m.rss_mb for m in done])])
    notes = [
        f"fetch-docs --version costs {walls[0] / walls[1]:.1f}x a bare interpreter start "
        f"({walls[0] - walls[1]:.0f} ms more)"
    ]
    headers = ["command", "wall ms (median of 10)", "min ms", "peak RSS MiB"]
    return [Section("startup", headers, rows, notes)]


SCENARIO_ERRORS = (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError)
SCENARIOS: dict[str, Callable[[Context], list[Section]]] = {
    "small": run_small,
    "large": run_large,
    "many": run_many,
    "scale": run_scale,
    "rerun": run_rerun,
    "startup": run_startup,
}


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark fetch-docs against aria2c, curl and a naive aiohttp script."
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (median shown)")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def available_peers() -> tuple[tuple[Tool, ...], list[str]]:
    """The peers that can run here, and a message for each one that cannot."""
    missing = {peer.name: peer.missing() for peer in PEERS}
    return tuple(p for p in PEERS if missing[p.name] is None), [
        f"skipped {message}" for message in missing.values() if message
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as for Ctrl-C
    for key in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[key]  # every request goes to 127.0.0.1
    started = time.perf_counter()
    peers, skipped = available_peers()
    for message in skipped:
        log(message)
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="fetch-docs-bench-") as scratch:
        ctx = Context(repeat=args.repeat, scratch=Path(scratch), peers=peers)
        for name in args.scenario or list(SCENARIOS):
            log(f"{name}:")
            try:
                produced = SCENARIOS[name](ctx)
            except SCENARIO_ERRORS as error:
                produced = [Section(f"{name}: FAILED", notes=[f"{type(error).__name__}: {error}"])]
            for section in produced:
                print(section.markdown(), flush=True)
            sections += produced
    elapsed = time.perf_counter() - started
    rss = f"peak RSS measured with {rss_method()}"
    intro = [*machine_info(fetch_docs_command(), elapsed), FAIRNESS, LEGEND, rss, *skipped]
    print("\n".join(f"- {line}" for line in intro))
    if args.markdown:
        write_markdown(args.markdown, intro=intro, sections=sections)
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: servers stopped, temporary folders removed")
        sys.exit(130)
