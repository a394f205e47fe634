"""CAUSE CNN: Linear -> eight gated 1-D convolutions -> Linear (Kameoka et al., Interspeech 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ...core.registry import ESTIMATORS
from ._layers import wn_conv1d, wn_linear
from .base import Estimator, length_mask

__all__ = ["CNN"]


@ESTIMATORS.register("cnn")
class CNN(Estimator):
    """Linear 128 -> eight Conv1d (kernel 3) + GLU blocks -> Linear out, weight norm everywhere.

    Each block is ``Dropout(0.1) -> Conv1d(C_in, 2*C_out, 3) -> GLU``. We read the paper's channel
    counts 128, 64, 64, 32, 32, 16, 16, 8 as the channels *after* the GLU, so each convolution
    produces twice as many channels and the GLU gates one half with the other. Convolutions use
    "same" zero padding, so N frames in give N frames out. Receptive field 17 frames (8 on each
    side: a look-ahead of 8 frames = 320 ms at 25 fps).
    Parameters (80 log-mel bands -> au17): 207,946.

    Args:
        in_features: input feature size.
        space: conditioning space.
        channels: channels after each GLU.
        kernel_size: convolution kernel size (odd).
        dilations: one dilation per block (all 1 for the CNN; see ``dcnn``).
        proj: width of the input Linear layer.
        dropout: dropout before each convolution.
        center: subtract each sequence's mean (over its valid frames) from the last hidden
            layer before the output Linear, so every output's mean over an utterance is the
            output bias and only the movement comes from the speech. For spaces with a large
            per-person constant that speech cannot carry (``landmarks68``: the face shape); the
            outputs then depend on the whole utterance, so the network does not stream.
        members: run this many independent networks of these sizes side by side (grouped
            convolutions) and average their outputs (the output Linear sums them): a seed
            ensemble as one network, built from trained members by
            :func:`speechface.speech.output_maps.merge_cnns`.

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.
    """

    paper = "Kameoka et al., CAUSE, Interspeech 2022 (CNN)"

    def __init__(self, in_features: int = 80, space: str = "au17",
                 channels: tuple[int, ...] | list[int] = (128, 64, 64, 32, 32, 16, 16, 8),
                 kernel_size: int = 3,
                 dilations: tuple[int, ...] | list[int] = (1, 1, 1, 1, 1, 1, 1, 1),
                 proj: int = 128, dropout: float = 0.1, center: bool = False,
                 members: int = 1) -> None:
        super().__init__(in_features, space)
        self.center = bool(center)
        if not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be a positive int, got {members!r}")
        self.members = members
        channels, dilations = list(channels), list(dilations)
        if len(channels) != len(dilations):
            raise ValueError(f"need one dilation per block: {len(channels)} channels, "
                             f"{len(dilations)} dilations")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.dilations = dilations
        k = members
        self.inp = wn_linear(in_features, k * proj)
        self.drops = nn.ModuleList()
        self.convs = nn.ModuleList()
        c_in = proj
        for c, d in zip(channels, dilations):
            self.drops.append(nn.Dropout(dropout))
            self.convs.append(wn_conv1d(k * c_in, k * 2 * c, kernel_size, dilation=d, groups=k))
            c_in = c
        self.out = wn_linear(k * c_in, self.out_dim)

    @property
    def lookahead(self) -> int | None:
        if self.center:  # the utterance mean: every frame depends on all of them
            return None
        return sum(d * (self.kernel_size - 1) // 2 for d in self.dilations)

    @property
    def receptive_field(self) -> int | None:
        la = self.lookahead
        return None if la is None else 2 * la + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(x).transpose(1, 2)  # (B, C, T)
        mask = length_mask(lengths, h.shape[-1], h.device)
        m = None if mask is None else mask[:, None, :].to(h.dtype)
        for drop, conv in zip(self.drops, self.convs):
            if m is not None:  # zeros past the end, exactly like the zero padding of one item
                h = h * m
            if self.members == 1:
                h = nn.functional.glu(conv(drop(h)), dim=1)
            else:  # each member's GLU gates its own half: (B, members, 2C, T) -> (B, members*C, T)
                z = conv(drop(h))
                z = nn.functional.glu(z.view(z.shape[0], self.members, -1, z.shape[-1]), dim=2)
                h = z.reshape(z.shape[0], -1, z.shape[-1])
        if self.center:
            if m is None:
                h = h - h.mean(-1, keepdim=True)
            else:
                h = (h - (h * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp_min(1)) * m
        return self.out(h.transpose(1, 2))
