"""The resumable grid runner: cache keys, resume, corruption, failures, retries, Dask execution."""

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from ddvi.bench.runner import GridError, config_key, run_grid

TESTS = str(Path(__file__).parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
import runner_tasks  # noqa: E402


def grid(tmp_path, xs, **extra):
    return [{"x": x, "log": str(tmp_path / "calls"), **extra} for x in xs]


def calls(tmp_path, x=None):
    return len(list((tmp_path / "calls").glob("*" if x is None else f"{x}-*")))


def ys(records):
    return [r["result"]["y"] for r in records]


def test_config_key_is_stable_and_canonical():
    a = config_key({"b": 1, "a": [1, 2], "c": {"y": 1.5, "x": "s"}})
    assert a == config_key({"c": {"x": "s", "y": 1.5}, "a": (1, 2), "b": 1})
    assert len(a) == 16 and int(a, 16) >= 0
    # must not change across versions: it names cache folders
    assert a == hashlib.sha256(b'{"a":[1,2],"b":1,"c":{"x":"s","y":1.5}}').hexdigest()[:16]
    assert config_key({"a": 1}) != config_key({"a": 1.0}) != config_key({"a": True})
    with pytest.raises(TypeError, match="not JSON-able"):
        config_key({"a": object()})
    with pytest.raises(TypeError, match="not JSON-able"):
        config_key({"a": float("nan")})


def test_sequential_order_cache_and_rerun(tmp_path):
    configs = grid(tmp_path, [3, 1, 2])
    out = run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert ys(out) == [9, 1, 4] and [r["config"] for r in out] == configs
    assert calls(tmp_path) == 3
    for r, c in zip(out, configs):
        folder = tmp_path / "cache" / config_key(c)
        assert r["key"] == config_key(c)
        assert json.loads((folder / "config.json").read_text()) == c
        stored = json.loads((folder / "result.json").read_text())
        assert stored["config"] == c and stored["result"]["y"] == c["x"] ** 2
        assert stored["seconds"] >= 0 and stored["host"] and "T" in stored["finished"]
    again = run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert calls(tmp_path) == 3 and ys(again) == [9, 1, 4]
    assert [r["seconds"] for r in again] == [r["seconds"] for r in out]


def test_partial_cache_computes_only_missing(tmp_path):
    cache = tmp_path / "cache"
    run_grid(runner_tasks.square, grid(tmp_path, [1, 2]), cache, workers=1, progress=False)
    out = run_grid(runner_tasks.square, grid(tmp_path, [4, 2, 1, 3, 4]), cache, workers=1,
                   progress=False)
    assert ys(out) == [16, 4, 1, 9, 16]
    assert [calls(tmp_path, x) for x in (1, 2, 3, 4)] == [1, 1, 1, 1]  # duplicate 4 computed once


@pytest.mark.parametrize("garbage", ['{"config": {"x"', "[1, 2]"])
def test_corrupted_result_is_recomputed(tmp_path, garbage):
    configs = grid(tmp_path, [1, 2])
    run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    bad = tmp_path / "cache" / config_key(configs[1]) / "result.json"
    bad.write_text(garbage)
    with pytest.warns(UserWarning, match="corrupted cache file"):
        out = run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert ys(out) == [1, 4] and calls(tmp_path, 1) == 1 and calls(tmp_path, 2) == 2
    assert json.loads(bad.read_text())["result"]["y"] == 4


def test_mismatched_stored_config_is_an_error(tmp_path):
    configs = grid(tmp_path, [1])
    folder = tmp_path / "cache" / config_key(configs[0])
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"config": {"x": 7}, "result": {"y": 49}}))
    with pytest.raises(RuntimeError, match="hash collision or corrupted"):
        run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert calls(tmp_path) == 0


def test_failing_config_raises_grid_error_others_cached(tmp_path, caplog):
    configs = grid(tmp_path, [1, 2, 3], fail=[2])
    with caplog.at_level(logging.ERROR), pytest.raises(GridError) as info:
        run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert len(info.value.failures) == 1 and info.value.failures[0]["config"] == configs[1]
    assert "boom on x=2" in str(info.value) and '"x": 2' in str(info.value)
    assert "boom on x=2" in caplog.text and '"x": 2' in caplog.text
    for c in (configs[0], configs[2]):
        assert (tmp_path / "cache" / config_key(c) / "result.json").exists()
    failed = tmp_path / "cache" / config_key(configs[1])
    assert not (failed / "result.json").exists()
    assert "ValueError" in json.loads((failed / "error.json").read_text())["traceback"]
    # a rerun only retries the failed config
    with pytest.raises(GridError):
        run_grid(runner_tasks.square, configs, tmp_path / "cache", workers=1, progress=False)
    assert [calls(tmp_path, x) for x in (1, 2, 3)] == [1, 2, 1]


def test_retries_and_bad_return(tmp_path):
    configs = grid(tmp_path, [5], flaky=2)
    with pytest.raises(GridError, match="flaky call 2"):
        run_grid(runner_tasks.square, configs, tmp_path / "c1", workers=1, progress=False, retries=1)
    out = run_grid(runner_tasks.square, configs, tmp_path / "c2", workers=1, progress=False, retries=2)
    assert ys(out) == [25] and out[0]["attempts"] == 1  # calls 3 (c1 made 2): succeeds first try
    with pytest.raises(GridError, match="returned list, not a dict"):
        run_grid(runner_tasks.not_a_dict, grid(tmp_path, [1]), tmp_path / "c3", workers=1, progress=False)
    with pytest.raises(ValueError, match="workers >= 1"):
        run_grid(runner_tasks.square, configs, tmp_path / "c4", workers=0)


def test_missing_dask_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r'pip install "ddvi\[distributed\]"'):
        run_grid(runner_tasks.square, grid(tmp_path, [1]), tmp_path / "cache", workers=2, progress=False)
    # a fully cached grid or workers=1 never needs Dask
    run_grid(runner_tasks.square, grid(tmp_path, [1]), tmp_path / "cache", workers=1, progress=False)
    run_grid(runner_tasks.square, grid(tmp_path, [1]), tmp_path / "cache", workers=2, progress=False)


def test_local_cluster_matches_sequential(tmp_path, monkeypatch):
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.distributed")
    monkeypatch.setenv("PYTHONPATH", TESTS)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the workers must still get 1, whatever dask's config says
    monkeypatch.setitem(dask.config.get("distributed.nanny.pre-spawn-environ"), "OMP_NUM_THREADS", 4)
    configs = grid(tmp_path, [1, 2, 3, 4], fail=[3])
    seq = [c for c in configs if c["x"] != 3]
    expected = ys(run_grid(runner_tasks.square, seq, tmp_path / "seq", workers=1, progress=False))
    start = time.perf_counter()
    with pytest.raises(GridError, match="boom on x=3") as info:
        run_grid(runner_tasks.square, configs, tmp_path / "dask", workers=2, progress=False)
    print(f"LocalCluster grid: {time.perf_counter() - start:.1f} s")
    assert [f["config"]["x"] for f in info.value.failures] == [3]
    out = run_grid(runner_tasks.square, seq, tmp_path / "dask", workers=2, progress=False)
    assert ys(out) == expected and calls(tmp_path) == 3 + 4  # cached: no recompute
    assert [r["result"] | {"pid": 0, "omp": 0} for r in out] == [
        r["result"] | {"pid": 0, "omp": 0} for r in run_grid(runner_tasks.square, seq, tmp_path / "seq",
                                                              workers=1, progress=False)]
    assert os.getpid() not in {r["result"]["pid"] for r in out}  # ran in worker processes
    assert {r["result"]["omp"] for r in out} == {"1"}


def test_explicit_scheduler_address(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setenv("PYTHONPATH", TESTS)
    configs = grid(tmp_path, [6, 7])
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster:
        out = run_grid(runner_tasks.square, configs, tmp_path / "cache",
                       scheduler=cluster.scheduler_address, progress=False)
        assert ys(out) == [36, 49] and os.getpid() not in {r["result"]["pid"] for r in out}
    print(f"explicit scheduler grid: {time.perf_counter() - start:.1f} s")
    assert calls(tmp_path) == 2


def test_bench_fits_get_the_workers_thread_count(monkeypatch):
    """A bench fit passes DDVI_BENCH_THREADS to the estimator, so threads='auto' never gives a
    worker more threads than its share of the cores."""
    from ddvi.bench import tasks
    from ddvi.bench.tables import table_configs
    from ddvi.estimator import DDVI

    class Stop(Exception):
        pass

    seen = []

    def fit(self, *args, **kwargs):
        seen.append(self.threads)
        raise Stop

    monkeypatch.setenv("DDVI_BENCH_THREADS", "1")
    monkeypatch.setattr(DDVI, "fit", fit)
    config = table_configs("table1", "smoke", seeds=[0], rows=["aevb"], priors=["pinwheel"])[0]
    with pytest.raises(Stop):
        tasks.image_fit(config)
    assert seen == [1]
