"""How many CPU threads torch computes with: by default, never more than the cores that are free.

Torch's default (one thread per core, OpenMP threads spinning while they wait) loses most of its
speed when another CPU-bound process shares the machine: every parallel region waits for the
thread the operating system has descheduled. ``threads="auto"`` counts the cores that other
processes keep busy (sampled over a short window from ``/proc/stat``, or the load average where
there is none) and uses the rest, at least one.

Example:
    >>> from ddvi.threads import resolve_threads
    >>> resolve_threads(1)
    1
"""

from __future__ import annotations

import os
import time

__all__ = ["available_cores", "busy_cores", "configure_threads", "resolve_threads"]

SAMPLE_SECONDS = 0.25


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all cores from /proc/stat, or None where it does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores other processes keep busy now: the machine's busy share over ``seconds``
    while this process sleeps, times the number of cores (the 1-minute load average where
    ``/proc/stat`` is missing)."""
    before = _cpu_times()
    if before is None:
        try:
            return float(os.getloadavg()[0])
        except OSError:
            return 0.0
    time.sleep(seconds)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return 0.0
    share = (after[0] - before[0]) / (after[1] - before[1])
    return share * (os.cpu_count() or 1)


def resolve_threads(threads: int | str | None) -> int:
    """The thread count for ``threads``: a positive int (at most the available cores), or
    ``"auto"``/None for the cores other processes leave free (at least 1)."""
    cores = available_cores()
    if threads is None or threads == "auto":
        return max(1, min(cores, round(cores - busy_cores())))
    if isinstance(threads, str):
        try:
            threads = int(threads)
        except ValueError:
            raise ValueError(f"threads must be 'auto' or a positive integer, got {threads!r}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be 'auto' or a positive integer, got {threads!r}")
    if threads > cores:
        raise ValueError(f"threads={threads} is more than the {cores} cores this process may use; "
                         f"choose 1..{cores} or 'auto'")
    return threads


def configure_threads(threads: int | str | None = "auto") -> int:
    """Set torch's intra-op thread count from ``threads`` (see :func:`resolve_threads`) and return
    it."""
    import torch

    n = resolve_threads(threads)
    torch.set_num_threads(n)
    return n
