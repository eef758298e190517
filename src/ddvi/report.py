"""Evaluate a fitted model with the paper's metrics and draw its figures into a run folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddvi import metrics, plot
from ddvi.devices import generator, module_device
from ddvi.estimators import BaseDDVI


def posterior_draws(model: BaseDDVI, X: Any, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
    """One seeded draw z ~ q(z|x) per row (the paper's protocol for latent metrics)."""
    data = model.prepare(X)
    device = module_device(model.method_)
    g = generator(seed, device)
    model.method_.eval()
    with torch.no_grad():
        return torch.cat([model.method_.posterior.rsample(b.to(device), g)[0].cpu()
                          for b in data.split(batch_size)]).numpy()


def evaluate(model: BaseDDVI, x_test: np.ndarray, y_test: np.ndarray | None = None,
             x_train: np.ndarray | None = None, y_train: np.ndarray | None = None,
             mmd_samples: int = 2000, elbo_samples: int = 1, seed: int = 0,
             dataset: str = "",
             nll_prior_samples: int = metrics.LATENT_NLL_PRIOR_SAMPLES) -> dict[str, Any]:
    """All metrics of the paper's MNIST tables, each named with its protocol.

    ``latent_nll`` scores ``nll_prior_samples`` recipe-only prior samples under a KDE of the test
    latents (the official protocol); ``latent_nll_floor`` is the prior scored against itself
    under the same protocol, with as many stand-in latents as test examples and the same scored
    samples: read a model's latent NLL as its distance above that floor."""
    start = time.perf_counter()
    prior = model.prior if isinstance(model.prior, str) else model.method_.prior.name
    out: dict[str, Any] = {"method": model.method, "prior": prior, "dataset": dataset,
                           "n_test": int(len(x_test))}
    data = model.prepare(x_test)
    if model.method_.has_elbo:
        e = metrics.elbo(model.method_, data, n_samples=elbo_samples, seed=seed)
        out["elbo"] = e["elbo"]
        out["elbo_protocol"] = (f"lower bound on log p(x), nats per example, mean over the test set, "
                                f"{elbo_samples} posterior sample(s) per example")
        out["elbo_terms"] = {k: v for k, v in e.items() if k != "elbo"}
        out["elbo_per_pixel_rec"] = e["rec"] / data.shape[1] + e["elbo"] - e["rec"]
        out["elbo_per_pixel_rec_protocol"] = ("the paper's figure: reconstruction averaged over "
                                              "pixels, other terms per example (not a bound)")
    else:
        out["elbo"] = None
        out["elbo_protocol"] = "N/A: this method has no ELBO"
    z_test = posterior_draws(model, x_test, seed)
    prior = model.method_.prior
    prior_z = metrics.recipe_samples(prior, nll_prior_samples, seed + 1)
    out["latent_nll"] = metrics.latent_nll(z_test, prior_z)
    out["latent_nll_protocol"] = metrics.latent_nll_protocol(len(z_test), nll_prior_samples)
    out["latent_nll_floor"] = metrics.latent_nll_floor(prior, len(z_test), prior_z, seed=seed + 5)
    out["latent_nll_floor_protocol"] = (
        f"the same protocol with {len(z_test)} recipe-only prior samples in place of the "
        "posterior draws (the prior scored against itself; same scored samples)")
    n = min(mmd_samples, len(x_test))
    fake, _ = model.sample(n, seed=seed + 2)
    real = model.prepare(x_test[:n], binarize=False).numpy()  # as the model sees them, not binarized
    out["mmd"] = metrics.mmd(fake, real)
    space = ("in [0, 1]" if model.likelihood == "bernoulli" else "standardized as the model does"
             if model.options_.feature_mean is not None else "as given")
    out["mmd_protocol"] = (f"paper kernel sum_s exp(-d^2/(2s)), s in (2,5,10,20,40,80), biased, "
                           f"{n} decoded prior samples (means) vs {n} test examples {space}")
    if x_train is not None and y_train is not None and y_test is not None:
        z_train = posterior_draws(model, x_train, seed + 3)
        out["knn_accuracy"] = metrics.knn_accuracy(z_train, y_train, z_test, y_test, k=20)
        out["knn_protocol"] = ("kNN-20 on one posterior draw per example, fitted on all "
                               f"{len(z_train)} training labels, scored on the test set")
    if model.options_.task == "clustering" and y_test is not None:
        from ddvi.cluster_metrics import cluster_scores, gmm_clusters

        k = model.options_.task_options["n_clusters"]
        out["prior"] = f"{k}-cluster {model.options_.task_options['cluster_model']} model"
        out["clusters_model"] = cluster_scores(y_test, model.predict(x_test))
        out["clusters_model_protocol"] = f"the model's own {k} clusters vs the test labels"
        out["clusters_gmm"] = cluster_scores(y_test, gmm_clusters(z_test, n_components=k))
        out["clusters_gmm_protocol"] = (f"post-hoc {k}-component full-covariance GMM on one "
                                        "posterior draw per example (reference notes 5.5)")
    if hasattr(model.method_, "predict_proba") and y_test is not None:
        out["accuracy"] = float((model.predict(x_test) == np.asarray(y_test)).mean())
        out["accuracy_protocol"] = "the model's classifier q(l|x) on the test set"
    out["eval_seconds"] = time.perf_counter() - start
    return out


def write_figures(model: BaseDDVI, run_dir: str | Path, x: np.ndarray, y: np.ndarray | None = None,
                  seed: int = 0, max_points: int = 10_000) -> list[Path]:
    """latents.png (map by class beside prior samples), samples.png (decoded), history.png, and
    map.html (the same test latents, interactive: row index, label and cluster on hover; skipped
    with a note when the ``maps`` extra is absent)."""
    from ddvi.interactive import try_write_map_html

    run_dir = Path(run_dir)
    x, y = x[:max_points], (None if y is None else y[:max_points])
    z = posterior_draws(model, x, seed)
    prior_z, _ = model.method_.prior.sample(len(z), generator(seed, model.method_.prior.device))
    name = f"{model.method} / {model.prior} prior"
    paths = [plot.plot_latents(z, labels=y, prior_samples=prior_z.cpu().numpy(),
                               path=run_dir / "latents.png", title=name)]
    groups = {} if y is None else {"label": y}
    if model.options_.task == "clustering":
        groups["cluster"] = model.predict(x)
    html = try_write_map_html(run_dir / "map.html", z, groups=groups,
                              title=f"{name}: test latents (one posterior draw per row)")
    paths += [] if html is None else [html]
    images, _ = model.sample(100, seed=seed)
    side = int(round(np.sqrt(images.shape[1])))
    if side * side == images.shape[1]:
        paths.append(plot.plot_image_grid(images.reshape(-1, side, side), run_dir / "samples.png",
                                          title=f"decoded prior samples ({name})"))
    if model.history_:
        paths.append(plot.plot_history(model.history_, run_dir / "history.png"))
    return paths


def write_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(obj, indent=1, default=float))
    return path
