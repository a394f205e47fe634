"""CAUSE DCNN: the CNN with dilated convolutions (Kameoka et al., Interspeech 2022)."""

from __future__ import annotations

from ...core.registry import ESTIMATORS
from .cnn import CNN

__all__ = ["DCNN"]


@ESTIMATORS.register("dcnn")
class DCNN(CNN):
    """The :class:`~speechface.speech.estimators.cnn.CNN` with dilations 1, 3, 9, 27, 1, 3, 9, 27.

    Same layers and GLU reading as the CNN; the dilations widen the receptive field to 161 frames
    (80 on each side: a look-ahead of 3.2 s at 25 fps).
    Parameters (80 log-mel bands -> au17): 207,946 (dilation adds no weights).

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.
    """

    paper = "Kameoka et al., CAUSE, Interspeech 2022 (DCNN)"

    def __init__(self, in_features: int = 80, space: str = "au17",
                 channels: tuple[int, ...] | list[int] = (128, 64, 64, 32, 32, 16, 16, 8),
                 kernel_size: int = 3,
                 dilations: tuple[int, ...] | list[int] = (1, 3, 9, 27, 1, 3, 9, 27),
                 proj: int = 128, dropout: float = 0.1) -> None:
        super().__init__(in_features, space, channels, kernel_size, dilations, proj, dropout)
