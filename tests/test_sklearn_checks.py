"""scikit-learn's own estimator checks on small, fast configurations of DDVI."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_clusterer_compute_labels_predict,
    check_clustering,
    parametrize_with_checks,
)

from ddvi import DDVI

FAST = dict(method="aevb", epochs=1, hidden=(8,), likelihood="gaussian", binarize=False,
            verbose=False)
SEMI_PROBA = ("fit(X, y) is semi-supervised and predict_proba has one column per prior partition "
              "(10 for pinwheel), not one per class seen in y; sparse fitting itself passes "
              "check_estimator_sparse_tag")


def expected_failures(estimator):
    """The sparse checks read predict_proba as a classifier's (n, n_classes_in_y)."""
    if estimator.n_clusters is not None:
        return {}
    return {"check_estimator_sparse_array": SEMI_PROBA, "check_estimator_sparse_matrix": SEMI_PROBA}


@parametrize_with_checks([DDVI(**FAST), DDVI(**FAST, n_clusters=3)],
                         expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.parametrize("check", [check_clustering, check_clusterer_compute_labels_predict])
def test_sklearn_clustering_checks(check):
    """DDVI is no ClusterMixin, so parametrize_with_checks skips these; n_clusters makes it a
    clusterer. check_clustering wants ARI > 0.4 on blobs and no empty cluster: 60 short epochs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check("DDVI", DDVI(**{**FAST, "epochs": 60, "batch_size": 16, "lr": 1e-2},
                           prior="gaussian", n_clusters=3))


def test_clustering_fit_ignores_y_with_a_warning():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="y is ignored"):
        m = DDVI(**FAST, n_clusters=2).fit(X, np.zeros(40, dtype=int))
    assert m.options_.task == "clustering" and m.labels_.shape == (40,)
