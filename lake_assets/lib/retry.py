"""Retry a whole Delta operation when another writer committed first."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")
_CONFLICT_MARKERS = (
    "failed to commit transaction",
    "concurrent",
    "conflict",
    "version already exists",
    "transaction failed",
)


class LostWriteError(RuntimeError):
    """A write committed, but a concurrent writer's commit then replaced what it wrote: done
    again on a fresh snapshot, like a commit conflict."""


def is_commit_conflict(exc: BaseException) -> bool:
    if isinstance(exc, LostWriteError):
        return True
    text = str(exc).lower()
    return any(m in text for m in _CONFLICT_MARKERS)


def with_commit_retry(fn: Callable[[], R], attempts: int = 6, log=None) -> R:
    """Run fn; on a commit conflict run it again on a fresh snapshot (fn must be idempotent)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:  # engines raise their own exception classes
            if attempt == attempts or not is_commit_conflict(e):
                raise
            delay = min(5.0, 0.2 * 2**attempt) * (0.5 + random.random())
            if log:
                log.warning(
                    f"commit conflict ({str(e).splitlines()[0][:200]}); retrying in {delay:.1f}s"
                )
            time.sleep(delay)
    raise AssertionError("unreachable")
