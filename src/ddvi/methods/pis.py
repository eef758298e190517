"""PIS (Zhang & Chen 2021) as an amortised posterior, trained like AEVB on the ELBO."""

from __future__ import annotations

from ddvi.methods.aevb import AEVB


class PIS(AEVB):
    """A :class:`~ddvi.posteriors.pis.PISPosterior` trained by the reverse-KL / ELBO objective.

    The loss is AEVB's, -[log p(x|z) + beta(epoch) * (prior_weight * log p(z) - log_q)], with
    ``log_q`` the path-space term of the PIS posterior; gradients flow through the whole
    reparameterised path (drift net and encoder context). Constructor as :class:`AEVB`.
    """

    name = "pis"
