"""Structured priors p(z) for DDVI, as ``torch.nn.Module`` objects.

Every prior exposes

* ``name``, ``dim`` and ``n_partitions``;
* ``sample(n, generator=None, *, kernel_noise=True) -> (z, part)``: ``z`` float32 ``(n, dim)``,
  ``part`` int64 ``(n,)`` (index of the partition each sample came from; always 0 for a partition /
  single-part prior). Samples never carry gradients. ``kernel_noise=False`` draws the sampling
  recipe alone (for ``pinwheel``, ``swiss_roll`` and ``square``: without the ``h * N(0, I)``
  kernel noise described below), which is what the official code's ``prior.sample`` returns and
  what the paper's latent NLL protocol scores; for the analytic priors it changes nothing.
* ``log_prob(z) -> (n,)``: differentiable in ``z`` and in learnable parameters;
* ``partition(i)``: the prior restricted to part ``i`` (renormalised), ``n_partitions == 1``.

The sample-only priors of the paper (``pinwheel``, ``swiss_roll``, ``square``) are defined, as in
appendix F of the paper, through a kernel density with an equal-weight mixture of Gaussian kernels
of bandwidths ``(0.005, 0.008, 0.01, 0.03, 0.05)``.  Here that is made exact: the prior *is*
``recipe + h * N(0, I)`` with ``h`` drawn uniformly from the bandwidths.  ``sample`` draws exactly
from it; ``log_prob`` is its density: analytic for ``square``; for ``pinwheel`` and ``swiss_roll``
a deterministic quadrature of the recipe is convolved with the kernels on a fine grid (built
lazily once, memoised) and interpolated bilinearly.  Where the table underflows (far from the
structure, or outside the grid) the density continues as the Gaussian tail of the widest kernel,
``tau * exp(-d(z)^2 / (2 h_max^2))`` with ``d`` the distance to the tabulated support and ``tau``
the table's cut-off (1e-12 of its peak): log p stays finite, decays as the paper's kernel density
does, and always points back to the prior (total tail mass < 1e-8).

Any prior one can sample works the same way: :class:`SamplesPrior` (``Prior.from_samples(x,
labels)``, ``Prior.from_function(sampler)``, or ``get_prior("samples:FILE.npy")``) is a stored
sample drawn uniformly (within the part of its label) plus the same kernel noise; its density is
tabulated as above in 2-D and evaluated exactly in other dimensions, and its samples are buffers
of the module, so a saved model carries its prior.
"""

from __future__ import annotations

from typing import Any

from ddvi.priors.base import DEFAULT_BANDWIDTHS, GaussianPrior, Prior
from ddvi.priors.base import LOG_2PI as LOG_2PI
from ddvi.priors.mixture import MixturePrior
from ddvi.priors.recipes import PinwheelPrior, SquarePrior, SwissRollPrior
from ddvi.priors.samples import MAX_TABLE_NODES as MAX_TABLE_NODES
from ddvi.priors.samples import MIN_PRIOR_SAMPLES as MIN_PRIOR_SAMPLES
from ddvi.priors.samples import SAMPLES_PREFIX as SAMPLES_PREFIX
from ddvi.priors.samples import SamplesPrior, samples_path
from ddvi.priors.table import TAIL_CUTOFF as TAIL_CUTOFF

__all__ = [
    "DEFAULT_BANDWIDTHS",
    "PRIORS",
    "GaussianPrior",
    "MixturePrior",
    "PinwheelPrior",
    "Prior",
    "SamplesPrior",
    "SquarePrior",
    "SwissRollPrior",
    "get_prior",
]

PRIORS: tuple[str, ...] = ("gaussian", "mixture", "pinwheel", "swiss_roll", "square")


# ----------------------------------------------------------------------------- factory

_REGISTRY: dict[str, type[Prior]] = {
    "gaussian": GaussianPrior,
    "mixture": MixturePrior,
    "pinwheel": PinwheelPrior,
    "swiss_roll": SwissRollPrior,
    "square": SquarePrior,
}


def get_prior(name: str, **kwargs: Any) -> Prior:
    """Build a prior by name (one of :data:`PRIORS`, or ``"samples:PATH"`` for a
    :class:`SamplesPrior` read from a .npy/.npz file); kwargs go to its constructor."""
    path = samples_path(name)
    if path is not None:
        if not path:
            raise ValueError(f"prior {name!r} names no file: use samples:PATH.npy or samples:PATH.npz")
        return SamplesPrior.from_file(path, **kwargs)
    key = str(name).strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown prior {name!r}; valid names: {', '.join(PRIORS)}, or "
                         "samples:FILE.npy for a prior given by samples")
    return _REGISTRY[key](**kwargs)
