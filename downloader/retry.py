"""When to try again: one policy for the Skop API and for document hosts.

Retried: errors whose ``retryable`` is true (connection errors, timeouts, short
bodies, 408/425/429/500/502/503/504). Waits use exponential backoff with full
jitter, unless the server said how long to wait (``Retry-After``), which is
obeyed up to ``max_wait``; a longer demand fails the request at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from downloader.errors import FetchDocsError

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How many times to retry and how long to wait in between."""

    retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry ``attempt + 1`` (attempt counts from 0)."""
        return random.uniform(0.0, min(self.cap, self.base * 2**attempt))  # noqa: S311


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def with_retries(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    on_retry: Callable[[FetchDocsError, float], None] | None = None,
) -> T:
    """Run ``attempt(n)`` until it succeeds, fails for good, or retries run out."""
    number = 0
    while True:
        try:
            return await attempt(number)
        except FetchDocsError as exc:
            if not exc.retryable or number >= policy.retries:
                raise
            delay = _delay(exc, policy=policy, number=number)
            if on_retry is not None:
                on_retry(exc, delay)
        await asyncio.sleep(delay)
        number += 1


def _delay(exc: FetchDocsError, *, policy: RetryPolicy, number: int) -> float:
    """The wait before the next try; re-raises ``exc`` if the server asks too much."""
    if exc.retry_after is None:
        return policy.backoff(number)
    if exc.retry_after > policy.max_wait:
        exc.args = (
            f"{exc.args[0]}; the server asked to wait {exc.retry_after:g} s, "
            f"more than --max-retry-wait {policy.max_wait:g} s",
        )
        raise exc
    return exc.retry_after
