"""Result objects returned by the estimators."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._io import atomic_write

__all__ = ["Prediction"]


@dataclass
class Prediction:
    """A sequence of predicted values, one row per 25 fps video frame.

    Attributes:
        values: ``(frames, dim)`` float32 array (for utterance-level models: one row).
        labels: label of each column (``"AU01"`` ..., ``"happiness"`` ..., ``"x_0"`` ...).
        columns: CSV column names (OpenFace style for AUs: ``"AU01_r"``).
        space: conditioning space name.
        fps: frames per second of ``values``.
        model: name of the model that produced it.
        pretrained: False when the model has random (untrained) weights.
        source: the audio file, if the input was a file.
        frame_level: False for utterance-level models (one row for the whole input).

    Example:
        ```python
        r = est.predict("speech.wav")
        r.values.shape, r.times[:3], r["AU12"]
        r.to_csv("aus.csv")
        ```
    """

    values: np.ndarray
    labels: tuple[str, ...]
    columns: tuple[str, ...]
    space: str
    fps: float = 25.0
    model: str = ""
    pretrained: bool = False
    source: str | None = None
    frame_level: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds (frame n at n / fps, the timestamp of video frame n)."""
        return np.arange(len(self.values), dtype=np.float64) / self.fps

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, label: str) -> np.ndarray:
        """One column by label (``r["AU12"]``, ``r["AU12_r"]`` or ``r["happiness"]``)."""
        for seq in (self.labels, self.columns):
            if label in seq:
                return self.values[:, list(seq).index(label)]
        raise KeyError(f"{label!r} is not one of {', '.join(self.labels)}")

    def to_numpy(self) -> np.ndarray:
        """The ``(frames, dim)`` values."""
        return self.values

    def mean(self) -> dict[str, float]:
        """Utterance summary: the mean of each label over frames."""
        return {k: float(v) for k, v in zip(self.labels, self.values.mean(axis=0))}

    def top(self) -> str:
        """The label with the highest mean (useful for emotion distributions)."""
        return self.labels[int(self.values.mean(axis=0).argmax())]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "pretrained": self.pretrained, "space": self.space,
                "fps": self.fps, "labels": list(self.labels), "times": self.times.tolist(),
                "values": self.values.tolist()}

    def to_csv(self, path: str | os.PathLike[str], decimals: int = 4) -> None:
        """Write an OpenFace-style CSV: ``frame, timestamp, <columns>`` (frame numbers from 1).

        OpenFace tooling that reads ``AUxx_r`` columns reads this file. Written atomically;
        ``path`` may also be an open text file (``sys.stdout``).
        """
        if hasattr(path, "write"):  # an open text file (e.g. sys.stdout)
            self._write_csv(path, decimals)  # type: ignore[arg-type]
            return
        with atomic_write(path, newline="") as f:
            self._write_csv(f, decimals)

    def _write_csv(self, f: Any, decimals: int) -> None:
        fmt = f"%.{decimals}f"
        f.write(",".join(["frame", "timestamp", *self.columns]) + "\n")
        for i, row in enumerate(self.values):
            f.write(f"{i + 1},{i / self.fps:.3f}," + ",".join(fmt % v for v in row) + "\n")

    def __repr__(self) -> str:
        kind = "pretrained" if self.pretrained else "random weights"
        return (f"Prediction(space={self.space!r}, frames={len(self)}, fps={self.fps}, "
                f"model={self.model!r} [{kind}])")
