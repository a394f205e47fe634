"""Base class of the speech estimators (the networks behind :class:`~speechface.AUEstimator`).

An estimator maps feature frames ``(batch, frames, in_features)`` to raw outputs of a
conditioning space: ``(batch, frames, space.dim)`` for frame-level estimators (N frames in,
N frames out), ``(batch, space.dim)`` for utterance-level ones. Raw outputs are turned into
space values by ``space.activate`` and trained with ``space.loss_fn``.

Adding an estimator = one class and one decorator::

    from speechface.speech.estimators import Estimator
    from speechface.core.registry import ESTIMATORS

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

**Streaming.** A network says how it runs on frames that arrive a few at a time
(:meth:`Estimator.stream`, :meth:`Estimator.stream_reason`): one with a finite receptive field
(set :attr:`Estimator.lookahead` and :attr:`Estimator.receptive_field`, as ``cnn``, ``dcnn`` and
``mlp`` do) gets a :class:`WindowStream` that recomputes a sliding window of frames; a stateful
network returns its own :class:`NetworkStream` carrying its state (``cnn_gru``: the GRU state).
:mod:`speechface.speech.streaming` only drives these.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ...core._hparams import Network
from ...spaces.space import Space, get_space

__all__ = ["Estimator", "NetworkStream", "WindowStream", "length_mask", "count_parameters"]


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


class Estimator(Network):
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

    def __init__(self, in_features: int = 80, space: str = "au17") -> None:
        super().__init__()
        if not isinstance(in_features, int) or in_features <= 0:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        self.in_features = in_features
        self.space: Space = get_space(space)
        self.out_dim = self.space.dim

    @property
    def lookahead(self) -> int | None:
        """Future frames an output frame depends on (None = the whole utterance)."""
        return None

    @property
    def receptive_field(self) -> int | None:
        """Frames an output frame depends on, past + itself + future (None = unbounded)."""
        return None

    def stream_reason(self) -> str | None:
        """Why this network cannot run on a stream with bounded latency, or ``None``.

        Utterance-level networks and networks without a bounded :attr:`lookahead` /
        :attr:`receptive_field` cannot (unless they override :meth:`stream`).

        Example:
            >>> from speechface.speech.estimators import create_estimator
            >>> create_estimator("cnn").stream_reason() is None
            True
        """
        if not self.frame_level:
            return f"{self.arch!r} is utterance-level: it predicts one vector from the whole utterance"
        if type(self).stream is not Estimator.stream:
            return None
        if self.lookahead is None:
            return (f"{self.arch!r}: every output frame depends on the whole utterance, so it "
                    "cannot stream with bounded latency")
        if self.receptive_field is None:
            return f"{self.arch!r} has an unbounded receptive field and no streaming implementation"
        return None

    def stream(self) -> NetworkStream:
        """A :class:`NetworkStream` running this network on frames as they arrive.

        Default: a :class:`WindowStream` over the finite receptive field.

        Raises:
            NotImplementedError: the network cannot stream (:meth:`stream_reason` says why).
        """
        reason = self.stream_reason()
        if reason is not None:
            raise NotImplementedError(reason)
        return WindowStream(self)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``(batch, frames, in_features)`` to raw outputs (see the module docstring).

        Args:
            x: normalised feature frames.
            lengths: optional ``(batch,)`` number of valid frames per item; frames past it are
                padding and must not influence the valid outputs.
        """
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"space={self.space.name}, params={count_parameters(self):,}"


class NetworkStream:
    """A frame-level network run on feature frames that arrive a few at a time.

    :meth:`push` takes the next ``(new_frames, in_features)`` normalised frames and returns the
    raw outputs ``(k, out_dim)`` that became final: the rows of ``network(all_frames[None])[0]``
    that no later frame can change (up to float32 rounding). An output frame is final once
    :attr:`lookahead` later frames arrived, or at ``final=True``.

    Attributes:
        lookahead: future frames an output frame depends on.
        n_out: output frames returned so far.
    """

    lookahead: int = 0

    def __init__(self, network: Estimator) -> None:
        self.network = network
        self.reset()

    def reset(self) -> None:
        """Forget all frames: start a new utterance."""
        self.feats: torch.Tensor | None = None
        self.f_start = 0  # index of the first frame held in self.feats
        self.f_end = 0  # frames received
        self.n_out = 0

    def _append(self, feats: torch.Tensor) -> None:
        if len(feats):
            self.feats = feats if self.feats is None else torch.cat([self.feats, feats])
            self.f_end += len(feats)

    def _forget_before(self, keep: int) -> None:
        if self.feats is not None and keep > self.f_start:
            self.feats = self.feats[keep - self.f_start:]
            self.f_start = keep

    def _empty(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(0, self.network.out_dim)

    def push(self, feats: torch.Tensor, final: bool = False, min_new: int = 1) -> torch.Tensor:
        """Append frames; return the raw outputs that are final (none until at least
        ``min_new`` are, unless ``final``)."""
        raise NotImplementedError


class WindowStream(NetworkStream):
    """Finite receptive field: recompute the network on ``past + new + lookahead`` frames.

    Output frame ``t`` depends on frames ``[t - past, t + lookahead]``. Outputs closer than
    ``past`` frames to the window start are dropped, except when the window starts at the
    utterance start, so the zero padding of every layer there is reproduced exactly; the
    padding at the end is reproduced at ``final``.

    Example:
        >>> from speechface.speech.estimators import create_estimator
        >>> net = create_estimator("cnn").eval()
        >>> x = torch.randn(40, 80)
        >>> ws = net.stream()
        >>> y = torch.cat([ws.push(x[:15]), ws.push(x[15:], final=True)])
        >>> bool(torch.allclose(y, net(x[None])[0], atol=1e-5))
        True
    """

    def __init__(self, network: Estimator) -> None:
        if network.lookahead is None or network.receptive_field is None:
            raise ValueError(f"{network.arch!r} has no finite receptive field")
        self.lookahead = int(network.lookahead)
        self.past = int(network.receptive_field) - 1 - self.lookahead
        super().__init__(network)

    def push(self, feats: torch.Tensor, final: bool = False, min_new: int = 1) -> torch.Tensor:
        self._append(feats)
        until = self.f_end if final else self.f_end - self.lookahead
        new = until - self.n_out
        if new <= 0 or (new < min_new and not final) or self.feats is None:
            return self._empty(feats)
        s = max(0, self.n_out - self.past)
        raw = self.network(self.feats[s - self.f_start:][None])[0]
        out = raw[self.n_out - s:until - s]
        self.n_out = until
        self._forget_before(max(0, self.n_out - self.past))
        return out
