"""Base class of the speech estimators (the networks behind :class:`~speechface.AUEstimator`).

An estimator maps feature frames ``(batch, frames, in_features)`` to raw outputs of a
conditioning space: ``(batch, frames, space.dim)`` for frame-level estimators (N frames in,
N frames out), ``(batch, space.dim)`` for utterance-level ones. Raw outputs are turned into
space values by ``space.activate`` and trained with ``space.loss_fn``.

Adding an estimator = one class and one decorator::

    from speechface.estimators import Estimator
    from speechface.registry import ESTIMATORS

    @ESTIMATORS.register("tiny")
    class Tiny(Estimator):
        def __init__(self, in_features: int = 80, space: str = "au17", hidden: int = 32):
            super().__init__(in_features, space)
            self.net = torch.nn.Sequential(torch.nn.Linear(in_features, hidden),
                                           torch.nn.ReLU(), torch.nn.Linear(hidden, self.out_dim))

        def forward(self, x, lengths=None):
            return self.net(x)

The constructor's arguments (JSON-plain values) are recorded automatically in ``hparams`` and
written to ``config.json``, so the model can be rebuilt from the registry when it is loaded.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .._hparams import RecordsHparams
from ..spaces import Space, get_space

__all__ = ["Estimator", "length_mask", "count_parameters"]


def length_mask(lengths: torch.Tensor | None, frames: int, device: torch.device | None = None
                ) -> torch.Tensor | None:
    """``(batch, frames)`` boolean mask, True on frames ``t < lengths[b]`` (None if no lengths)."""
    if lengths is None:
        return None
    t = torch.arange(frames, device=device if device is not None else lengths.device)
    return t[None, :] < lengths.to(t.device)[:, None]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class Estimator(RecordsHparams, nn.Module):
    """A speech network predicting values of a conditioning space.

    Args:
        in_features: feature dimension per frame (80 log-mel bands, 39 MFCCs ...).
        space: name of the conditioning space (``"au17"``, ``"emotion8"``, ``"landmarks68"``);
            the output size comes from it.

    Class attributes subclasses may set:
        frame_level: True if N frames in give N frames out (False: one vector per utterance).
        default_feature: the feature extractor it is designed for (``"logmel"`` or ``"mfcc"``).
        default_space: the space it is designed for.
        paper: a reference for the docs.
    """

    frame_level: ClassVar[bool] = True
    default_feature: ClassVar[str] = "logmel"
    default_space: ClassVar[str] = "au17"
    paper: ClassVar[str] = ""
    registry_name: ClassVar[str] = ""
    hparams: dict[str, Any]

    def __init__(self, in_features: int = 80, space: str = "au17") -> None:
        super().__init__()
        if not isinstance(in_features, int) or in_features <= 0:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        self.in_features = in_features
        self.space: Space = get_space(space)
        self.out_dim = self.space.dim

    @property
    def arch(self) -> str:
        """Registry name of this architecture."""
        return type(self).registry_name or type(self).__name__.lower()

    @property
    def lookahead(self) -> int | None:
        """Future frames an output frame depends on (None = the whole utterance)."""
        return None

    @property
    def receptive_field(self) -> int | None:
        """Frames an output frame depends on, past + itself + future (None = unbounded)."""
        return None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``(batch, frames, in_features)`` to raw outputs (see the module docstring).

        Args:
            x: normalised feature frames.
            lengths: optional ``(batch,)`` number of valid frames per item; frames past it are
                padding and must not influence the valid outputs.
        """
        raise NotImplementedError

    def num_parameters(self) -> int:
        return count_parameters(self)

    def extra_repr(self) -> str:
        return f"space={self.space.name}, params={count_parameters(self):,}"
