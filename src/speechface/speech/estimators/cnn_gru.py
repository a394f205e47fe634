"""CNN + GRU over spectrogram context windows, predicting per-frame values (landmarks by default)."""

from __future__ import annotations

import torch
from torch import nn

from ...core.registry import ESTIMATORS
from .base import Estimator, NetworkStream

__all__ = ["CNNGRU", "CNNGRUStream"]


@ESTIMATORS.register("cnn_gru")
class CNNGRU(Estimator):
    """Per-frame spectrogram context window -> 2-D convolutions (frequency, then time) -> GRU -> dense.

    For every frame t a window of ``context`` frames centred on t (zero-padded at the edges) is
    cut from the spectrogram. Two convolutions run along frequency (kernel 5x1, stride 2 in
    frequency), two along time (kernel 1x3); the result is pooled to ``freq_pool`` bands,
    flattened and embedded; a unidirectional GRU runs over frames, and two dense layers give the
    outputs. Look-ahead: ``context // 2`` frames (200 ms with the default 11).
    Parameters (80 log-mel bands -> landmarks68, defaults): 155,896.

    Args:
        in_features: spectrogram bands.
        space: conditioning space (``landmarks68`` by default).
        context: frames per window (odd).
        conv_channels: channels of the frequency convolutions and of the time convolutions.
        freq_pool: frequency bins kept after the convolutions (adaptive average pooling).
        hidden: embedding and GRU width.
        dropout: dropout before the dense layers.

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.
    """

    default_space = "landmarks68"
    paper = "CNN+GRU landmark regression from spectrogram context windows"

    def __init__(self, in_features: int = 80, space: str = "landmarks68", context: int = 11,
                 conv_channels: tuple[int, int] | list[int] = (16, 32), freq_pool: int = 4,
                 hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__(in_features, space)
        if context % 2 != 1:
            raise ValueError(f"context must be odd, got {context}")
        c1, c2 = conv_channels
        self.context = context
        self.convs = nn.Sequential(
            nn.Conv2d(1, c1, (5, 1), stride=(2, 1), padding=(2, 0)), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.Conv2d(c1, c1, (5, 1), stride=(2, 1), padding=(2, 0)), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.Conv2d(c1, c2, (1, 3)), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.Conv2d(c2, c2, (1, 3)), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.AdaptiveAvgPool2d((freq_pool, 1)),
        )
        self.embed = nn.Linear(c2 * freq_pool, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, self.out_dim))

    @property
    def lookahead(self) -> int:
        return self.context // 2

    def step(self, xp: torch.Tensor, hidden: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames with their context -> outputs and the new GRU state.

        Args:
            xp: ``(B, T + context - 1, F)``: the frames of ``T`` outputs plus ``context // 2``
                frames on each side (zeros beyond the utterance's edges).
            hidden: the GRU state after the previous frames (``None`` at the start).

        Returns:
            ``((B, T, out_dim) raw outputs, (1, B, hidden) GRU state)``.
        """
        b, tp, f = xp.shape
        t = tp - (self.context - 1)
        win = xp.unfold(1, self.context, 1)  # (B, T, F, context)
        h = self.convs(win.reshape(b * t, 1, f, self.context))  # (B*T, C, P, 1)
        h = torch.relu(self.embed(h.flatten(1))).view(b, t, -1)
        h, hidden = self.gru(h, hidden)
        return self.head(h), hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        t = x.shape[1]
        half = self.context // 2
        if lengths is not None:  # zero past the end, like the edge padding of a single item
            mask = torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            x = x * mask[..., None].to(x.dtype)
        xp = nn.functional.pad(x, (0, 0, half, half))  # (B, T + 2h, F)
        return self.step(xp)[0]

    def stream(self) -> CNNGRUStream:
        """Frames as they arrive: context windows from the held frames, the GRU state kept."""
        return CNNGRUStream(self)


class CNNGRUStream(NetworkStream):
    """:class:`CNNGRU` on a stream: holds ``context // 2`` past frames and the GRU state.

    Output frame ``t`` needs frames up to ``t + context // 2`` (its look-ahead); the causal GRU
    carries everything before.

    Example:
        >>> net = CNNGRU().eval()
        >>> x = torch.randn(30, 80)
        >>> st = net.stream()
        >>> y = torch.cat([st.push(x[:9]), st.push(x[9:], final=True)])
        >>> bool(torch.allclose(y, net(x[None])[0], atol=1e-5))
        True
    """

    network: CNNGRU

    def __init__(self, network: CNNGRU) -> None:
        self.lookahead = network.context // 2
        super().__init__(network)

    def reset(self) -> None:
        super().reset()
        self.hidden: torch.Tensor | None = None

    def push(self, feats: torch.Tensor, final: bool = False, min_new: int = 1) -> torch.Tensor:
        h = self.lookahead
        self._append(feats)
        until = self.f_end if final else self.f_end - h
        new = until - self.n_out
        if new <= 0 or (new < min_new and not final) or self.feats is None:
            return self._empty(feats)
        lo, hi = self.n_out - h, until + h
        x = self.feats[max(lo, 0) - self.f_start:min(hi, self.f_end) - self.f_start]
        x = nn.functional.pad(x, (0, 0, max(0, -lo), max(0, hi - self.f_end)))
        y, self.hidden = self.network.step(x[None], self.hidden)
        self.n_out = until
        self._forget_before(max(0, self.n_out - h))
        return y[0]
