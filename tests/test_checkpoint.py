"""Checkpoint files: the header's configuration is checksummed and validated, config.json is a copy,
temporaries of killed writers are cleaned up."""

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ddvi import DDVI
from ddvi.checkpoint import (
    CheckpointError,
    _digest,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)


def data(n=64, d=10):
    return (np.random.default_rng(0).random((n, d)) > 0.5).astype(np.float32)


def fitted(tmp_path, **kw):
    base = dict(method="aevb", hidden=(8,), epochs=1, batch_size=32, verbose=False)
    return DDVI(**{**base, **kw}).fit(data()).save(tmp_path / "m") / "model.safetensors"


def edit_header(path, edit):
    """Rewrite the ddvi JSON header of a safetensors file in place with ``edit(header)``."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    ddvi = json.loads(head["__metadata__"]["ddvi"])
    edit(ddvi)
    head["__metadata__"]["ddvi"] = json.dumps(ddvi)
    new = json.dumps(head).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


def as_version_1(path, edit=lambda config: None):
    """Turn a file into header version 1 (tensor-only checksum), editing its config first."""
    tensors = load_file(str(path))

    def change(header):
        edit(header["meta"]["config"])
        header["version"], header["sha256"] = 1, _digest(tensors)

    edit_header(path, change)


def test_round_trip_and_meta_is_covered_by_the_checksum(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.arange(4.0)}, {"a": (1, 2), "b": {"c": 0.1}})
    tensors, meta = load_checkpoint(path)
    assert meta == {"a": [1, 2], "b": {"c": 0.1}} and torch.equal(tensors["w"], torch.arange(4.0))
    edit_header(path, lambda h: h["meta"].update(a=[1, 3]))
    with pytest.raises(CheckpointError, match=f"{path}.*edited.*checksum"):
        load_checkpoint(path)


def test_an_edited_model_header_is_refused_naming_the_file(tmp_path):
    path = fitted(tmp_path)
    edit_header(path, lambda h: h["meta"]["config"]["model"].update(latent_dim=3))
    with pytest.raises(CheckpointError, match=f"{path}.*checksum"):
        DDVI.load(path)


def test_version_1_files_still_load(tmp_path):
    path = fitted(tmp_path)
    as_version_1(path)
    (path.parent / "config.json").unlink()
    assert DDVI.load(path.parent).transform(data()).shape == (64, 2)


@pytest.mark.parametrize("edit,field", [
    (lambda c: c["params"].update(hidden=5), "params.hidden"),
    (lambda c: c["params"].update(colour="red"), "params.colour"),
    (lambda c: c["model"].update(prior="banana"), "model.prior"),
    (lambda c: c["options"].update(n_features=0), "options.n_features"),
    (lambda c: c["options"].update(method=7), "options.method"),
    (lambda c: c["options"].update(task="regression"), "options.task"),
    (lambda c: c["model"]["network"].update(hidden=[8, -1]), "model.network.hidden"),
    (lambda c: c["model"]["network"].update(width=8), "model.network.width"),
    (lambda c: c["model"]["diffusion"].update(timesteps="4"), "model.diffusion.timesteps"),
    (lambda c: c["model"].update(network=[8]), "model.network"),
    (lambda c: c.pop("model"), "model"),
    (lambda c: c["model"].update(latent_dim=3), "weights do not fit"),
    (lambda c: c["model"]["network"].update(hidden=[9]), "weights do not fit"),
    (lambda c: c["options"].update(build={"latent_dim": 2}), "options.build"),
])
def test_a_bad_configuration_is_a_checkpoint_error_naming_file_and_field(tmp_path, edit, field):
    path = fitted(tmp_path)
    as_version_1(path, edit)  # a version-1 file: no checksum over the header to stop the edit
    (path.parent / "config.json").unlink()
    with pytest.raises(CheckpointError, match=str(path)) as err:
        DDVI.load(path)
    assert field in str(err.value)


def test_config_json_must_agree_with_the_header(tmp_path):
    path = fitted(tmp_path)
    copy = path.parent / "config.json"
    config = json.loads(copy.read_text())
    assert config == load_checkpoint(path)[1]["config"]
    config["params"]["prior"] = "square"
    copy.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json disagrees .* params.prior.*square"):
        DDVI.load(path.parent)
    copy.write_text("{not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        DDVI.load(path.parent)
    copy.unlink()  # the copy is optional: the header is authoritative
    assert DDVI.load(path.parent).get_params()["prior"] == "pinwheel"


def test_stale_temporaries_are_removed_and_only_those(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from ddvi.checkpoint import _host

    stale = tmp_path / f".checkpoint.safetensors.ddvi-tmp.{_host()}.{dead.pid}"
    legacy = tmp_path / f".model.safetensors.tmp-{dead.pid}"
    live = tmp_path / f".checkpoint.safetensors.ddvi-tmp.{_host()}.{os.getpid()}"
    other_host = tmp_path / f".checkpoint.safetensors.ddvi-tmp.elsewhere-xyz.{dead.pid}"
    mine = [tmp_path / "notes.tmp-1", tmp_path / "checkpoint.safetensors"]
    for p in [stale, legacy, live, other_host, *mine]:
        p.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([stale, legacy])
    assert all(p.exists() for p in [live, other_host, *mine])


KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import ddvi.checkpoint as ck
    from ddvi import DDVI

    def hang(fd):  # the temporary is written: now the process is killed before the rename
        print("written", flush=True)
        time.sleep(600)

    X = (np.random.default_rng(0).random((64, 10)) > 0.5).astype(np.float32)
    ck.os.fsync = hang
    DDVI(method="aevb", hidden=(8,), epochs=1, batch_size=32, verbose=False, seed=1,
         run_dir=sys.argv[1]).fit(X)
""")


def test_a_writer_killed_mid_checkpoint_leaves_nothing_behind_after_resume(tmp_path):
    run = tmp_path / "run"
    kw = dict(method="aevb", hidden=(8,), batch_size=32, verbose=False, seed=1)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(run)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()
        proc.wait()
    temporaries = [p for p in run.iterdir() if ".ddvi-tmp." in p.name]
    assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
    assert not (run / "checkpoint.safetensors").exists()
    resumed = DDVI(**kw, epochs=2, run_dir=str(run)).fit(data(), resume=True)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.safetensors", "history.csv",
                                                     "history.json"]
    straight = DDVI(**kw, epochs=2).fit(data())
    assert np.array_equal(resumed.transform(data()), straight.transform(data()))


def test_resume_from_an_older_ddvi_posterior_format_is_refused(tmp_path):
    run = tmp_path / "run"
    kw = dict(method="ddvi", hidden=(8,), timesteps=2, denoiser_hidden=8, batch_size=32,
              verbose=False, run_dir=str(run))
    DDVI(**kw, epochs=1).fit(data())
    as_version_1(run / "checkpoint.safetensors",
                 lambda c: c["options"].update(posterior_format=1))
    with pytest.raises(CheckpointError, match="posterior format 1.*cannot be resumed"):
        DDVI(**kw, epochs=2).fit(data(), resume=True)


def as_previous_layout(config):
    """A configuration as written before ModelConfig: the model's settings as a flat
    ``options.build`` beside ``options.method``, no ``model``, and no parameters that did not
    exist then (denoiser_layers, learn_variance)."""
    model = config.pop("model")
    flat = {k: v for part in ("network", "diffusion", "objective") for k, v in model.pop(part).items()}
    for key in ("denoiser_layers", "learn_variance"):
        flat.pop(key)
        config["params"].pop(key)
    build = {k: model[k] for k in ("prior", "likelihood", "latent_dim")} | flat
    config["options"] = {"method": model["method"], "n_features": config["options"]["n_features"],
                         "build": build, **{k: v for k, v in config["options"].items()
                                            if k != "n_features"}}


@pytest.mark.parametrize("method", ["aevb", "ddvi"])
def test_models_saved_in_the_previous_layout_load(tmp_path, method):
    kw = dict(method=method, timesteps=3, denoiser_hidden=8, prior="gaussian")
    path = fitted(tmp_path, **kw)
    z = DDVI.load(path).transform(data())

    def change(header):
        as_previous_layout(header["meta"]["config"])
        old = header["meta"]["config"]
        assert "model" not in old and old["options"]["build"]["hidden"] == [8]
        (path.parent / "config.json").write_text(json.dumps(old))  # the old copy agrees

    edit_header(path, change)
    with pytest.raises(CheckpointError, match="checksum"):  # the edit changed the header...
        DDVI.load(path)
    as_version_1(path)  # ...so re-save it as a version-1 file (no checksum over the header)
    loaded = DDVI.load(path)
    assert np.array_equal(loaded.transform(data()), z)
    assert loaded.denoiser_layers == 5 and loaded.learn_variance is True
    assert loaded.config_.network.hidden == (8,) and loaded.config_.method == method
    resaved = loaded.save(tmp_path / "again") / "model.safetensors"
    assert "build" not in load_checkpoint(resaved)[1]["config"]["options"]
    assert load_checkpoint(resaved)[1]["config"]["model"] == loaded.config_.to_dict()


def test_a_checkpoint_in_the_previous_layout_resumes(tmp_path):
    kw = dict(method="ddvi", hidden=(8,), timesteps=3, denoiser_hidden=8, batch_size=32,
              verbose=False, prior="gaussian", run_dir=str(tmp_path / "run"))
    DDVI(**kw, epochs=1).fit(data())
    path = tmp_path / "run" / "checkpoint.safetensors"
    as_version_1(path, as_previous_layout)
    assert "build" in load_checkpoint(path)[1]["config"]["options"]
    resumed = DDVI(**kw, epochs=2).fit(data(), resume=True)
    assert len(resumed.history_) == 2
    as_version_1(path, as_previous_layout)
    with pytest.raises(ValueError, match="denoiser_layers=5"):  # the value the model was built with
        DDVI(**kw, epochs=3, denoiser_layers=4).fit(data(), resume=True)
