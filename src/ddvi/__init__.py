"""ddvi: Denoising Diffusion Variational Inference (diffusion models as variational posteriors).

Example:
    >>> from ddvi import DDVI
    >>> model = DDVI(method="ddvi", prior="pinwheel", epochs=1)  # doctest: +SKIP
"""

from ddvi.diffusion import NoiseSchedule
from ddvi.estimator import DDVI
from ddvi.methods import METHODS, build_method
from ddvi.priors import PRIORS, Prior, get_prior

__version__ = "0.1.0"
__all__ = ["DDVI", "METHODS", "PRIORS", "NoiseSchedule", "Prior", "build_method", "get_prior"]
