"""The scikit-learn estimators under their former module name: see :mod:`ddvi.estimators`
(:class:`DDVI`, :class:`SemiSupervisedDDVI`, :class:`ClusteringDDVI`)."""

from ddvi.estimators import (
    DDVI,
    MODEL_FILE,
    POSTERIOR_FORMAT,
    RESUMABLE,
    BaseDDVI,
    ClusteringDDVI,
    ResumeMismatchError,
    SemiSupervisedDDVI,
    check_array,
    upgrade_config,
)
from ddvi.train import Trainer

__all__ = ["DDVI", "MODEL_FILE", "POSTERIOR_FORMAT", "RESUMABLE", "BaseDDVI", "ClusteringDDVI",
           "ResumeMismatchError", "SemiSupervisedDDVI", "Trainer", "check_array",
           "upgrade_config"]
