"""Tasks built on the methods: semi-supervised learning (section 4.1) and clustering (4.2)."""

from ddvi.tasks.clustering import (
    ClusterVariable,
    assign_clusters,
    build_cluster_variable,
    build_mixture_clustering,
    mixture_prior,
    predict_clusters,
)
from ddvi.tasks.semi_supervised import (
    SemiSupervised,
    SemiSupervisedAAEB,
    build_semi_supervised,
    select_labels,
)

__all__ = ["ClusterVariable", "SemiSupervised", "SemiSupervisedAAEB", "assign_clusters",
           "build_cluster_variable", "build_mixture_clustering", "build_semi_supervised",
           "mixture_prior", "predict_clusters", "select_labels"]
