"""The scikit-learn estimators, one per task, over a shared base.

:class:`DDVI` is unsupervised, :class:`SemiSupervisedDDVI` learns classes from a few labels,
:class:`ClusteringDDVI` clusters; each ``load`` returns the estimator of the saved model's task.
"""

from ddvi.estimators._support import (
    MODEL_FILE,
    POSTERIOR_FORMAT,
    RESUMABLE,
    ResumeMismatchError,
    check_array,
    upgrade_config,
)
from ddvi.estimators.base import BaseDDVI
from ddvi.estimators.tasks import (
    DDVI,
    TASK_CLASSES,
    ClusteringDDVI,
    SemiSupervisedDDVI,
    estimator_for,
)

__all__ = ["DDVI", "MODEL_FILE", "POSTERIOR_FORMAT", "RESUMABLE", "TASK_CLASSES", "BaseDDVI",
           "ClusteringDDVI", "ResumeMismatchError", "SemiSupervisedDDVI", "check_array",
           "estimator_for", "upgrade_config"]
