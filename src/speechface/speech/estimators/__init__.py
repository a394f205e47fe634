"""Speech estimators: networks from feature frames to a conditioning space (registry ``ESTIMATORS``).

Importing this package registers the built-in architectures: ``mlp``, ``rnn``, ``cnn``,
``dcnn`` (CAUSE), ``lstm_mfcc`` (utterance-level) and ``cnn_gru`` (landmarks). Each network
also says how it streams (:meth:`Estimator.stream`, :class:`NetworkStream`).
"""

from ...core.registry import ESTIMATORS
from .base import Estimator, NetworkStream, WindowStream, count_parameters, length_mask
from .cnn import CNN
from .cnn_gru import CNNGRU
from .dcnn import DCNN
from .lstm_mfcc import LSTMMFCC
from .mlp import MLP
from .rnn import RNN
from .stats_pool import StatsPool

__all__ = ["Estimator", "NetworkStream", "WindowStream", "count_parameters", "length_mask",
           "create_estimator", "list_estimators",
           "MLP", "RNN", "CNN", "DCNN", "LSTMMFCC", "CNNGRU", "StatsPool"]


def create_estimator(name: str, **kwargs: object) -> Estimator:
    """Build a registered estimator network with random weights.

    Example:
        >>> net = create_estimator("cnn", space="au17")
        >>> net(torch.zeros(1, 50, 80)).shape        # doctest: +SKIP
        torch.Size([1, 50, 17])
    """
    return ESTIMATORS.create(name, **kwargs)


def list_estimators(pattern: str = "*") -> list[str]:
    """Names of the registered estimator architectures (shell-style wildcards)."""
    return ESTIMATORS.list(pattern)
