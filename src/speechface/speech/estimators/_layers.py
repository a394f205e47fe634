"""Layers shared by the estimator architectures."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def wn_linear(in_f: int, out_f: int) -> nn.Module:
    """Weight-normalised ``nn.Linear`` (Salimans & Kingma 2016), as in the CAUSE networks."""
    return weight_norm(nn.Linear(in_f, out_f))


def wn_conv1d(in_c: int, out_c: int, kernel: int, dilation: int = 1, groups: int = 1) -> nn.Module:
    """Weight-normalised ``nn.Conv1d`` with "same" zero padding (odd kernels)."""
    return weight_norm(nn.Conv1d(in_c, out_c, kernel, dilation=dilation,
                                 padding=dilation * (kernel - 1) // 2, groups=groups))
