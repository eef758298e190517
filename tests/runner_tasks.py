"""Toy tasks for tests/test_runner.py, importable by Dask workers (tests/ on their PYTHONPATH)."""

import os
import uuid
from pathlib import Path


def _log_call(config: dict) -> int:
    """Record one call in ``config["log"]``; return how many calls this config had so far."""
    log = Path(config["log"])
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{config['x']}-{uuid.uuid4().hex}").touch()
    return len(list(log.glob(f"{config['x']}-*")))


def square(config: dict) -> dict:
    """x -> x**2, failing for x in ``config["fail"]`` and for the first ``config["flaky"]`` calls."""
    calls = _log_call(config)
    if config["x"] in config.get("fail", []):
        raise ValueError(f"boom on x={config['x']}")
    if calls <= config.get("flaky", 0):
        raise RuntimeError(f"flaky call {calls}")
    return {"y": config["x"] ** 2, "pid": os.getpid(), "omp": os.environ.get("OMP_NUM_THREADS")}


def not_a_dict(config: dict) -> list:
    return [config["x"]]
