"""scikit-learn's own estimator checks on small, fast configurations of the estimators."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_clusterer_compute_labels_predict,
    check_clustering,
    parametrize_with_checks,
)

from ddvi import DDVI, ClusteringDDVI

FAST = dict(method="aevb", epochs=1, hidden=(8,), likelihood="gaussian", binarize=False,
            verbose=False)
SUBSET = ("float32 matrix products of a whole batch and of a subset may differ in the last bit "
          "(about 1e-7), more than the check's atol=1e-7")


@parametrize_with_checks([DDVI(**FAST), ClusteringDDVI(**FAST, n_clusters=3)],
                         expected_failed_checks=lambda _: {
                             "check_methods_subset_invariance": SUBSET})
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.parametrize("check", [check_clustering, check_clusterer_compute_labels_predict])
def test_sklearn_clustering_checks(check):
    """ClusteringDDVI is no ClusterMixin, so parametrize_with_checks skips these; its tags make it
    a clusterer. check_clustering wants ARI > 0.4 on blobs and no empty cluster: 60 short epochs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check("ClusteringDDVI", ClusteringDDVI(**{**FAST, "epochs": 60, "batch_size": 16,
                                                  "lr": 1e-2}, prior="gaussian", n_clusters=3))


def test_clustering_fit_ignores_y_with_a_warning():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="y is ignored"):
        m = ClusteringDDVI(**FAST, n_clusters=2).fit(X, np.zeros(40, dtype=int))
    assert m.options_.task == "clustering" and m.labels_.shape == (40,)
