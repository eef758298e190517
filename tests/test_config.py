"""The model's settings as frozen config dataclasses: JSON round trip, unknown fields refused,
every setting reaches the model through the estimator."""

import dataclasses
import json

import numpy as np
import pytest
from sklearn.base import clone

from ddvi import DDVI
from ddvi.config import FLAT_KEYS, DiffusionConfig, ModelConfig, NetworkConfig, ObjectiveConfig
from ddvi.methods import build_method


def test_round_trip_through_json():
    config = ModelConfig(method="aevb", prior="mixture", likelihood="gaussian", latent_dim=2,
                         prior_options={"n_components": 4},
                         network=NetworkConfig(arch="mlp", hidden=(16, 8), dropout=0.1,
                                               context_dim=3, denoiser_hidden=32,
                                               denoiser_layers=2),
                         diffusion=DiffusionConfig(timesteps=7, schedule="cosine", beta_start=1e-3,
                                                   beta_end=0.4, learn_variance=False),
                         objective=ObjectiveConfig(beta_reg=2.5, prior_weight=1.0, sleep="full",
                                                   beta_diff=0.5, sleep_steps=2, fantasy="mean"))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["network"]["hidden"] == [16, 8] and data["diffusion"]["timesteps"] == 7
    assert ModelConfig.from_dict(data) == config
    assert ModelConfig.from_flat(**config.flat()) == config
    assert ModelConfig.from_dict({}) == ModelConfig()  # absent fields: the defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.latent_dim = 3


def test_unknown_fields_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"ModelConfig: unknown field\(s\) colour, size"):
        ModelConfig.from_dict({"colour": "red", "size": 1, "method": "ddvi"})
    with pytest.raises(ValueError, match=r"ModelConfig.network: unknown field\(s\) width"):
        ModelConfig.from_dict({"network": {"width": 8}})
    with pytest.raises(ValueError, match=r"NetworkConfig: unknown field\(s\) width"):
        NetworkConfig.from_dict({"width": 8})
    with pytest.raises(TypeError, match="unknown model setting.*widht"):
        ModelConfig.from_flat(widht=8)
    with pytest.raises(TypeError, match="unknown model setting.*widht"):
        build_method("aevb", 8, prior="gaussian", widht=8)


def test_the_estimator_parameters_cover_the_config():
    params = DDVI().get_params()
    assert set(FLAT_KEYS) - set(params) == {"prior_options"}
    assert DDVI().model_config() == ModelConfig()


def test_denoiser_settings_reach_the_model():
    X = (np.random.default_rng(0).random((32, 6)) > 0.5).astype(np.float32)
    model = DDVI(denoiser_layers=3, learn_variance=False, hidden=(8,), timesteps=3,
                 denoiser_hidden=8, epochs=1, verbose=False)
    assert clone(model).get_params()["denoiser_layers"] == 3
    model.fit(X)
    q = model.method_.posterior
    assert model.config_.network.denoiser_layers == 3
    assert model.config_.diffusion.learn_variance is False
    assert len(q.denoiser.hidden) == 3 - 1 and not q.learn_variance
    assert q.denoiser.out.out_features == 2  # no log-variance outputs
    default = DDVI(hidden=(8,), timesteps=3, denoiser_hidden=8, epochs=1, verbose=False).fit(X)
    assert len(default.method_.posterior.denoiser.hidden) == 5 - 1
    assert default.method_.posterior.denoiser.out.out_features == 4


def test_build_method_takes_a_config_or_flat_keywords():
    config = ModelConfig.from_flat(method="ddvi", prior="gaussian", hidden=(8,), timesteps=3,
                                   denoiser_hidden=8, denoiser_layers=2)
    flat = {k: v for k, v in config.flat().items() if k != "method"}
    a, b = build_method(config, 6), build_method("ddvi", 6, **flat)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == \
        [(k, v.shape) for k, v in b.state_dict().items()]
    c = build_method(config, 6, timesteps=5)  # keywords replace the config's fields
    assert c.posterior.schedule.timesteps == 5
