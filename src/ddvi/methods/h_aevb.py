"""H-AEVB: AEVB with a hierarchical variational posterior (Ranganath, Tran & Blei 2016), the
paper's auxiliary-variable baseline. Same objective and weights as AEVB; pair it with
``HierarchicalPosterior``, whose ``log_q = log q(a|x) + log q(z|a,x) - log r(a|z,x)`` turns the
AEVB loss into the auxiliary-variable bound."""

from __future__ import annotations

from ddvi.methods.aevb import AEVB


class HAEVB(AEVB):
    """The AEVB objective (see ``AEVB``) with a ``HierarchicalPosterior``."""

    name = "h-aevb"
