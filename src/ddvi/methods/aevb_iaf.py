"""AEVB-IAF: AEVB with an inverse autoregressive flow posterior (Kingma et al. 2016), the paper's
flow baseline. Same objective and weights as AEVB; pair it with ``IAFPosterior``."""

from __future__ import annotations

from ddvi.methods.aevb import AEVB


class AEVBIAF(AEVB):
    """The AEVB objective (see ``AEVB``) with an ``IAFPosterior``; only the posterior differs."""

    name = "aevb-iaf"
