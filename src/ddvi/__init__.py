"""ddvi: Denoising Diffusion Variational Inference (diffusion models as variational posteriors).

Example:
    >>> from ddvi import DDVI
    >>> model = DDVI(method="ddvi", prior="pinwheel", epochs=1)  # doctest: +SKIP

:class:`DDVI` is unsupervised; :class:`SemiSupervisedDDVI` (``fit(X, y)``, y = -1 for unlabeled
rows) and :class:`ClusteringDDVI` (``n_clusters``) are the other tasks' estimators.
"""

from ddvi.diffusion import NoiseSchedule
from ddvi.estimators import DDVI, ClusteringDDVI, SemiSupervisedDDVI
from ddvi.methods import METHODS, build_method
from ddvi.priors import PRIORS, Prior, get_prior

__version__ = "0.1.0"
__all__ = ["DDVI", "METHODS", "PRIORS", "ClusteringDDVI", "NoiseSchedule", "Prior",
           "SemiSupervisedDDVI", "build_method", "get_prior"]
