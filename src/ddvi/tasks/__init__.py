"""Tasks built on the methods: semi-supervised learning (paper section 4.1)."""

from ddvi.tasks.semi_supervised import (
    SemiSupervised,
    SemiSupervisedAAEB,
    build_semi_supervised,
    select_labels,
)

__all__ = ["SemiSupervised", "SemiSupervisedAAEB", "build_semi_supervised", "select_labels"]
