"""ImageFitConfig: the typed config of one image fit, and its dict form (cache keys, Dask)."""

import json

import pytest

from ddvi.bench.runner import config_key
from ddvi.bench.tables import table_configs
from ddvi.fitting import ImageFitConfig


def test_round_trip_through_json():
    config = ImageFitConfig("ddvi", "square", seed=3, epochs=2, n_train=100, n_labels=10,
                            options={"sleep": "latent", "hidden": [16]}, data_dir=None)
    plain = json.loads(json.dumps(config.to_dict()))
    assert ImageFitConfig.from_dict(plain) == config
    assert "balanced_labels" not in plain  # at its default: earlier cache keys still match
    unbalanced = ImageFitConfig("ddvi", "square", n_labels=10, balanced_labels=False)
    assert ImageFitConfig.from_dict(unbalanced.to_dict()).balanced_labels is False


def test_options_are_copied_and_paths_become_strings(tmp_path):
    options = {"sleep": "full"}
    config = ImageFitConfig("ddvi", "pinwheel", options=options, data_dir=tmp_path)
    options["sleep"] = "none"
    assert config.options == {"sleep": "full"} and config.data_dir == str(tmp_path)
    with pytest.raises(AttributeError):
        config.seed = 1  # frozen


def test_bench_configs_are_image_fit_configs_plus_the_grid_labels():
    for config in table_configs("table2", "cpu", [0], rows=["ddvi-elbo"], priors=["square"]):
        fit = ImageFitConfig.from_dict(config)
        assert {**fit.to_dict(), "task": "image", "scale": "cpu", "row": "ddvi-elbo"} == config
        assert config_key({**config}) == config_key(json.loads(json.dumps(config)))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown image fit settings \['epoch'\]"):
        ImageFitConfig.from_dict({"method": "aevb", "prior": "square", "epoch": 3})
    with pytest.raises(ValueError, match="keeps no labels"):
        ImageFitConfig("aevb", "square", n_labels=0)
