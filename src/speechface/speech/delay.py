"""Output delay: shift a model's frame sequence later in time by a (fractional) number of frames.

A speech model trained on talking-face clips whose speech is late against the frames learns to
predict the face from *later* speech: on speech that is in sync (a wav file, a correctly muxed
video) its mouth then moves before the sound. :attr:`SpeechEstimator.output_delay
<speechface.speech.SpeechEstimator.output_delay>` undoes that after the network: output frame
``t`` is the network's output at ``t - d``, linearly interpolated between the two frames around
it, with the first frame held before the start. The number of frames does not change, and the
last ``d`` frames of the network's output are not shown. It is fitted on development speakers
(:func:`speechface.evaluation.calibration.fit_output_delay`) and stored in ``config.json``
(``output_delay_frames``).

Output frame ``t`` uses the network's frames ``<= t`` only, so streaming keeps the latency of
the network and gives the values of the offline path (:class:`OutputDelay`).

>>> import torch
>>> delay_outputs(torch.arange(5.0)[:, None], 1.5)[:, 0]
tensor([0.0000, 0.0000, 0.5000, 1.5000, 2.5000])
"""

from __future__ import annotations

import math

import torch

__all__ = ["OutputDelay", "delay_outputs", "check_delay"]


def check_delay(frames: float) -> float:
    """``frames`` as a float, or ValueError naming ``output_delay`` when it is not finite or
    negative (a model cannot show a frame before it heard it)."""
    try:
        d = float(frames)
    except (TypeError, ValueError):
        raise ValueError(f"output_delay must be a number of frames, got {frames!r}") from None
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"output_delay must be a finite number of frames >= 0, got {frames!r}")
    return d


class OutputDelay:
    """The streaming form of :func:`delay_outputs`: push raw frames in order, get as many back.

    Args:
        frames: the delay in frames (>= 0, fractional allowed).
    """

    def __init__(self, frames: float) -> None:
        self.frames = check_delay(frames)
        self.reset()

    def reset(self) -> None:
        """Forget the frames seen: start a new utterance."""
        self._seen = 0
        self._tail: torch.Tensor | None = None

    def push(self, raw: torch.Tensor) -> torch.Tensor:
        """``(n, dim)`` raw frames following the ones pushed before -> ``(n, dim)`` delayed."""
        n = raw.shape[0]
        if self.frames == 0 or n == 0:
            self._seen += n
            return raw
        buf = raw if self._tail is None else torch.cat([self._tail, raw])
        first = self._seen + n - buf.shape[0]  # global index of buf[0]
        t = torch.arange(self._seen, self._seen + n, dtype=torch.float64, device=raw.device)
        pos = (t - self.frames).clamp_min(0.0)
        i0 = pos.floor()
        w = (pos - i0).to(raw.dtype)[:, None]
        i0 = i0.long() - first
        i1 = torch.minimum(i0 + 1, torch.full_like(i0, buf.shape[0] - 1))
        out = buf[i0] * (1 - w) + buf[i1] * w
        self._seen += n
        self._tail = buf[-(int(math.ceil(self.frames)) + 1):]
        return out


def delay_outputs(raw: torch.Tensor, frames: float) -> torch.Tensor:
    """``(n, dim)`` frames shifted ``frames`` later (see the module docstring); a copy-free
    no-op for 0."""
    return OutputDelay(frames).push(raw)
