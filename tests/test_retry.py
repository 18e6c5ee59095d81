"""The retry policy: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from downloader.errors import HttpStatusError, ServerError, TransferError
from downloader.retry import RetryPolicy, parse_retry_after, with_retries

FAST = RetryPolicy(retries=3, base=0.001, cap=0.002, max_wait=5)


def test_backoff_is_full_jitter_within_cap() -> None:
    """Each wait lies in [0, min(cap, base * 2**attempt)]."""
    policy = RetryPolicy(base=1.0, cap=5.0)
    for attempt in range(8):
        for _ in range(50):
            assert 0.0 <= policy.backoff(attempt) <= min(5.0, 2.0**attempt)


def test_parse_retry_after() -> None:
    """Retry-After is delta-seconds or an HTTP date; garbage is ignored."""
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_retries_retryable_errors_until_success() -> None:
    """A retryable error is retried; the result of the first success is returned."""
    calls: list[int] = []

    async def attempt(number: int) -> str:
        calls.append(number)
        if number < 2:
            raise TransferError("reset")
        return "ok"

    assert await with_retries(attempt, policy=FAST) == "ok"
    assert calls == [0, 1, 2]


async def test_gives_up_after_retries() -> None:
    """After ``retries`` retries the last error is raised."""
    calls: list[int] = []

    async def attempt(number: int) -> None:
        calls.append(number)
        raise HttpStatusError("503", status=503)

    with pytest.raises(HttpStatusError):
        await with_retries(attempt, policy=FAST)
    assert len(calls) == FAST.retries + 1


async def test_permanent_errors_are_not_retried() -> None:
    """A 404 is final at once."""
    calls: list[int] = []

    async def attempt(number: int) -> None:
        calls.append(number)
        raise HttpStatusError("404", status=404)

    with pytest.raises(HttpStatusError):
        await with_retries(attempt, policy=FAST)
    assert calls == [0]


async def test_retry_after_is_obeyed_and_reported() -> None:
    """The server's Retry-After is the wait, and on_retry sees it."""
    waits: list[float] = []

    async def attempt(number: int) -> str:
        if number == 0:
            raise ServerError("429", status=429, retry_after=0.05)
        return "ok"

    result = await with_retries(attempt, policy=FAST, on_retry=lambda _, wait: waits.append(wait))
    assert result == "ok"
    assert waits == [0.05]


async def test_retry_after_beyond_max_wait_fails_with_reason() -> None:
    """A Retry-After longer than max_wait fails at once, saying why."""

    async def attempt(number: int) -> None:
        raise HttpStatusError("429 Too Many Requests", status=429, retry_after=600)

    with pytest.raises(
        HttpStatusError, match="asked to wait 600 s, more than --max-retry-wait 5 s"
    ):
        await with_retries(attempt, policy=FAST)
