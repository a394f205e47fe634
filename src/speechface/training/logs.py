"""Training logs: ``log.csv`` rows and the running means and throughput written to them.

In: values per step (losses, counts of frames or images). Out: :class:`MetricWindow` means
and rates, appended to ``OUT/log.csv`` by :class:`CSVLogger` (rank 0).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core._io import atomic_path

__all__ = ["CSVLogger", "MetricWindow"]


class CSVLogger:
    """Append rows to ``path`` (header written once); does nothing when not ``enabled``."""

    def __init__(self, path: str | os.PathLike[str], fields: list[str], enabled: bool = True) -> None:
        self.path, self.fields, self.enabled = Path(path), fields, enabled

    def log(self, **row: Any) -> None:
        """Append one row (floats with 6 significant digits)."""
        if not self.enabled:
            return
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (used when resuming from an earlier checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r.get("step", 0) or 0) <= step]
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)



class MetricWindow:
    """Running means of named values and the throughput since the window opened.

    Example:
        >>> w = MetricWindow(); w.add(32, loss=1.0); w.add(32, loss=3.0)
        >>> w.means()["loss"], w.items
        (2.0, 64)
    """

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.items = 0
        self.start = time.perf_counter()

    def add(self, items: int = 0, **values: float) -> None:
        """Count ``items`` (frames, images) and record one value per name."""
        self.items += items
        for k, v in values.items():
            self.values.setdefault(k, []).append(float(v))

    def means(self) -> dict[str, float]:
        """Mean of each recorded name."""
        return {k: float(np.mean(v)) for k, v in self.values.items()}

    def rate(self) -> float:
        """Items per second since the window opened."""
        return self.items / max(time.perf_counter() - self.start, 1e-9)
