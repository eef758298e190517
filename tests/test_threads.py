"""Thread-count selection: validation, the 'auto' rule, and the busy-core probe."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ddvi import threads


@pytest.mark.parametrize("bad", [0, -1, "x", 1.5, True])
def test_bad_thread_counts_name_the_problem(bad):
    with pytest.raises(ValueError, match="threads must be 'auto' or a positive integer"):
        threads.resolve_threads(bad)


def test_more_threads_than_cores_is_an_error():
    cores = threads.available_cores()
    with pytest.raises(ValueError, match=f"more than the {cores} cores"):
        threads.resolve_threads(cores + 1)


def test_explicit_counts_pass_through():
    assert threads.resolve_threads(1) == 1
    assert threads.resolve_threads("1") == 1


@pytest.mark.parametrize(("cores", "busy", "expected"), [(2, 0.0, 2), (2, 1.0, 1), (2, 1.4, 1),
                                                         (2, 5.0, 1), (8, 2.6, 5), (8, 0.3, 8)])
def test_auto_leaves_busy_cores_alone(monkeypatch, cores, busy, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "busy_cores", lambda seconds=0.0: busy)
    assert threads.resolve_threads("auto") == expected
    assert threads.resolve_threads(None) == expected


def test_busy_cores_sees_a_spinning_neighbour():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = threads.busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.5


def test_configure_threads_sets_torch():
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
