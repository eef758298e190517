"""A generic, resumable runner for grids of independent tasks (fits), optionally on Dask.

Each task is ``fn(config) -> dict`` for a JSON-able ``config``. Its record is cached under
``cache/<config_key(config)>/``: ``config.json`` when the task starts and ``result.json`` (written
atomically by the task itself, on the worker) when it finishes, holding
``{"config", "result", "seconds", "host", "finished", "attempts"}``. A rerun only computes the
configs whose ``result.json`` is missing (or unreadable), so an interrupted grid resumes, and
results that finished survive a crash of the driver.

Execution (see :func:`run_grid`): sequentially in this process without Dask (``workers=1``), on a
loopback ``LocalCluster`` of single-threaded worker processes started for the call (``workers>1``),
or on an existing ``dask.distributed`` cluster (``scheduler="tcp://host:port"``). Dask is the
optional extra ``ddvi[distributed]``, imported only when needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["GridError", "config_key", "run_grid"]

log = logging.getLogger(__name__)
KEY_LENGTH = 16
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class GridError(RuntimeError):
    """Some tasks of a grid failed; ``failures`` lists ``{"config", "key", "error"}`` for each."""

    def __init__(self, failures: list[dict[str, Any]], total: int):
        self.failures = failures
        lines = [f"{len(failures)} of {total} tasks failed (the others are cached):"]
        lines += [f"  {f['key']} {json.dumps(f['config'], sort_keys=True)}: {f['error']}"
                  for f in failures]
        super().__init__("\n".join(lines))


def _canonical(config: Mapping[str, Any]) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"a config must be a mapping (dict), got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"config is not JSON-able ({e}): {config!r}") from e


def config_key(config: Mapping[str, Any]) -> str:
    """Stable short hex sha256 of the canonical JSON (sorted keys, compact) of ``config``."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:KEY_LENGTH]


def _write_json_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _run_task(fn: Callable[[dict], dict], config: dict, folder: str, retries: int) -> dict[str, Any]:
    """Run one config (up to ``1 + retries`` attempts) and cache its record; never raises on a
    failure of ``fn`` but returns ``{"error": ...}`` so the driver can report it with its config."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(config, path / "config.json")
    error = ""
    for attempt in range(1, retries + 2):
        start = time.perf_counter()
        try:
            result = fn(dict(config))
            if not isinstance(result, Mapping):
                raise TypeError(f"the task returned {type(result).__name__}, not a dict")
            result = json.loads(json.dumps(result))  # JSON-able, and as it reads back from cache
        except Exception as e:  # reported with its config by the driver
            error = f"{type(e).__name__}: {e}"
            _write_json_atomic({"config": config, "error": error, "attempt": attempt,
                                "traceback": traceback.format_exc()}, path / "error.json")
            continue
        record = {"config": config, "result": result, "seconds": time.perf_counter() - start,
                  "host": socket.gethostname(), "attempts": attempt,
                  "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write_json_atomic(record, path / "result.json")
        (path / "error.json").unlink(missing_ok=True)
        return record
    return {"error": error, "attempts": retries + 1}


def _read_cached(folder: Path, config: dict) -> dict[str, Any] | None:
    """The cached record of ``config``, or None if missing or unreadable; raises on a mismatch."""
    for name in ("result.json", "config.json"):
        try:
            stored = json.loads((folder / name).read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            if name == "result.json":
                warnings.warn(f"corrupted cache file {folder / name} ({e}): recomputing", stacklevel=3)
            continue
        if name == "result.json":
            if not isinstance(stored, dict) or "result" not in stored or "config" not in stored:
                warnings.warn(f"corrupted cache file {folder / name} (no config/result): recomputing",
                              stacklevel=3)
                continue
            stored_config = stored["config"]
        else:
            stored_config = stored
        if stored_config != config:
            raise RuntimeError(f"cache folder {folder} holds another config than the one hashed to its "
                               f"key (hash collision or corrupted cache): stored {stored_config!r}, "
                               f"expected {config!r}; remove the folder to recompute it")
        if name == "result.json":
            return stored
    return None


@contextmanager
def _dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError('running a grid on Dask needs the distributed extra: '
                          'pip install "ddvi[distributed]" (or use workers=1)') from e
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    # OMP_NUM_THREADS etc. only take effect if set before the worker process starts.
    env = dict(WORKER_ENV)
    if "DDVI_BENCH_DEVICE" in os.environ:  # the device the caller chose (ddvi bench --device)
        env["DDVI_BENCH_DEVICE"] = os.environ["DDVI_BENCH_DEVICE"]
    spawn_env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}
    with dask.config.set(spawn_env), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=":0", env=env) as cluster, \
            Client(cluster) as client:
        yield client


def run_grid(fn: Callable[[dict], dict], configs: Sequence[Mapping[str, Any]], cache: str | Path, *,
             scheduler: str | None = None, workers: int = 2, progress: bool = True,
             retries: int = 0) -> list[dict[str, Any]]:
    """Run ``fn`` on every config not already cached in ``cache``; return the records (see module
    docstring; ``record["result"]`` is what ``fn`` returned) in the order of ``configs``.

    ``fn`` must be importable at module level (not a lambda or a ``__main__`` function) so Dask
    pickles it by reference, and return a JSON-able dict. ``scheduler``: address of an existing
    dask.distributed cluster. Otherwise ``workers > 1`` starts (and closes) a loopback LocalCluster
    of that many single-threaded processes with ``OMP_NUM_THREADS=1`` (torch's own thread count is
    the caller's business), and ``workers == 1`` runs sequentially in this process without Dask.
    A task that raises is retried ``retries`` times, then logged with its config while the others
    go on; at the end a :class:`GridError` lists the failed configs (the others stay cached).
    """
    from tqdm.auto import tqdm

    if workers < 1 or retries < 0:
        raise ValueError(f"need workers >= 1 and retries >= 0, got workers={workers}, retries={retries}")
    cache = Path(cache)
    keys = [config_key(c) for c in configs]
    plain = {k: json.loads(_canonical(c)) for k, c in zip(keys, configs)}  # dedup; tuples -> lists
    records: dict[str, dict[str, Any]] = {}
    for key, config in plain.items():
        cached = _read_cached(cache / key, config)
        if cached is not None:
            records[key] = cached
    todo = [k for k in plain if k not in records]
    failures: list[dict[str, Any]] = []

    def collect(key: str, out: dict[str, Any]) -> None:
        if "error" in out:
            log.error("task %s failed after %d attempt(s): %s; config: %s", key,
                      out.get("attempts", 1), out["error"], json.dumps(plain[key], sort_keys=True))
            failures.append({"config": plain[key], "key": key, "error": out["error"]})
        else:
            records[key] = out

    bar = tqdm(total=len(plain), initial=len(records), desc="tasks", disable=not progress)
    try:
        if todo and scheduler is None and workers == 1:
            for key in todo:
                collect(key, _run_task(fn, plain[key], str(cache / key), retries))
                bar.update()
        elif todo:
            with _dask_client(scheduler, min(workers, len(todo))) as client:
                from dask.distributed import as_completed

                futures = {client.submit(_run_task, fn, plain[k], str(cache / k), retries,
                                         key=f"ddvi-task-{k}-{uuid.uuid4().hex[:8]}", pure=False): k
                           for k in todo}
                for future in as_completed(futures):
                    try:
                        out = future.result()
                    except Exception as e:  # e.g. the worker died (KilledWorker)
                        out = {"error": f"{type(e).__name__}: {e}"}
                    collect(futures[future], out)
                    bar.update()
    finally:
        bar.close()
    if failures:
        raise GridError(failures, len(plain))
    return [{**records[k], "key": k} for k in keys]
