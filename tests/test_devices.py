"""Devices: names resolved and checked, generators on the device, the estimator's ``device``
(CPU here; the CUDA path runs wherever a GPU is present and is skipped elsewhere)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ddvi import DDVI, ClusteringDDVI, SemiSupervisedDDVI
from ddvi.devices import generator, module_device, resolve_device
from ddvi.train import Trainer

HAS_CUDA = torch.cuda.is_available()


def _data(n: int = 96, d: int = 12, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, d)) > 0.5).astype(np.float32)


def _model(**kw) -> DDVI:
    return DDVI(**{"method": "ddvi", "prior": "pinwheel", "hidden": (8,), "epochs": 1,
                   "batch_size": 32, "verbose": False, "denoiser_hidden": 8, "timesteps": 3, **kw})


def test_resolve_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if HAS_CUDA else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    for bad in ("gpu0", "tpu", "", "cuda:x"):
        with pytest.raises(ValueError, match="device"):
            resolve_device(bad)


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
def test_missing_cuda_is_named() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="CUDA is not available"):
        _model(device="cuda").fit(_data())


def test_cpu_generator_is_torchs_default_stream() -> None:
    a = torch.randn(5, generator=generator(7, "cpu"))
    b = torch.randn(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_module_device() -> None:
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(torch.nn.Identity()) == torch.device("cpu")


def test_explicit_cpu_equals_auto_on_cpu_machine() -> None:
    if HAS_CUDA:
        pytest.skip("auto is CUDA here")
    X = _data()
    a = _model(device="cpu").fit(X).transform(X)
    b = _model(device="auto").fit(X).transform(X)
    np.testing.assert_array_equal(a, b)


def test_load_on_a_named_device_and_fallback(tmp_path) -> None:
    X = _data()
    model = _model(device="cpu").fit(X)
    model.save(tmp_path / "m")
    loaded = DDVI.load(tmp_path / "m", device="cpu")
    assert module_device(loaded.method_) == torch.device("cpu")
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    if HAS_CUDA:
        return
    model.set_params(device="cuda")  # as if fitted on a GPU machine
    model.save(tmp_path / "gpu")
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        moved = DDVI.load(tmp_path / "gpu")
    assert moved.device == "cpu"
    np.testing.assert_array_equal(moved.transform(X), model.transform(X))
    with pytest.raises(ValueError, match="CUDA is not available"):
        DDVI.load(tmp_path / "gpu", device="cuda")


def test_resume_on_another_device_type_warns_and_reseeds(tmp_path) -> None:
    """A checkpoint written on another device type cannot restore the generator (each type has
    its own); the resumed run says so and continues with a seeded stream."""
    X = torch.from_numpy(_data())
    model = _model(device="cpu")
    model.fit(X.numpy())
    trainer = Trainer(model.method_, epochs=1, batch_size=32, run_dir=tmp_path, verbose=False)
    trainer.fit(X)
    trainer.device = torch.device("meta")  # recorded as the checkpoint's generator device
    trainer.save()
    again = Trainer(model.method_, epochs=2, batch_size=32, run_dir=tmp_path, verbose=False)
    with pytest.warns(UserWarning, match="random stream"):
        history = again.fit(X, resume=True)
    assert len(history) == 2


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_fit_transform_save_load_on_cpu(tmp_path) -> None:
    X = _data(256)
    model = _model(device="cuda", epochs=2).fit(X)
    assert module_device(model.method_).type == "cuda"
    z = model.transform(X)
    assert isinstance(z, np.ndarray) and z.shape == (256, 2) and np.isfinite(z).all()
    assert np.isfinite(model.score(X))
    images, latents = model.sample(8)
    assert images.shape == (8, 12) and latents.shape == (8, 2)
    model.save(tmp_path / "m")
    cpu = DDVI.load(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(cpu.transform(X), z, atol=1e-4)
    y = np.full(256, -1)
    y[:40] = np.arange(40) % 10
    semi = SemiSupervisedDDVI(**_model(device="cuda").get_params()).fit(X, y)
    assert semi.predict_proba(X).shape == (256, 10)
    clusters = ClusteringDDVI(**_model(device="cuda").get_params(), n_clusters=3).fit_predict(X)
    assert clusters.shape == (256,)


def test_bench_device_is_checked_and_passed_to_tasks(tmp_path, monkeypatch) -> None:
    from ddvi.bench import tables, tasks

    monkeypatch.delenv("DDVI_BENCH_DEVICE", raising=False)
    assert tasks._device() == "auto"
    monkeypatch.setenv("DDVI_BENCH_DEVICE", "cpu")
    assert tasks._device() == "cpu"
    monkeypatch.delenv("DDVI_BENCH_DEVICE")
    with pytest.raises(ValueError, match="unknown device"):
        tables.run_bench("table3", "smoke", tmp_path, device="gpu0", rows=["pca"])
    seen = {}

    def fake_grid(fn, configs, cache, **kw):
        seen["device"] = tasks._device()
        raise RuntimeError("stop")

    monkeypatch.setattr("ddvi.bench.runner.run_grid", fake_grid)
    with pytest.raises(RuntimeError, match="stop"):
        tables.run_bench("table3", "smoke", tmp_path, device="cpu", rows=["pca"])
    assert seen["device"] == "cpu"
    assert "DDVI_BENCH_DEVICE" not in os.environ  # restored after the run


def test_mid_scale_uses_every_image() -> None:
    from ddvi.bench.tables import table_configs

    configs = table_configs("table1", "mid", rows=["aevb", "ddvi"], priors=["pinwheel"])
    assert len(configs) == 2
    assert all(c["n_train"] is None and c["n_test"] is None and c["epochs"] == 10
               and c["mmd_samples"] == 10000 for c in configs)
