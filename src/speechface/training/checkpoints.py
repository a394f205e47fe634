"""Checkpoint folders and early stopping: the parts of a run's state that outlive a kill.

In: a step number, the weights' writer, the trainer state. Out: ``step-NNNNNNNNN`` folders
with a ``latest`` pointer (the newest ``keep`` kept), and the patience counter that decides
when validation has stopped improving.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core._io import atomic_write

__all__ = ["CheckpointManager", "EarlyStopping"]


class CheckpointManager:
    """Numbered checkpoint folders with a ``latest`` pointer; keeps the newest ``keep``."""

    def __init__(self, root: str | os.PathLike[str], keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = keep

    def save(self, step: int, write: Callable[[Path], Any], state: dict[str, Any]) -> Path:
        """``write(folder)`` writes the weights, then the trainer state; renamed when complete.

        The pointer is updated last, so a kill at any moment leaves the older checkpoints usable.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:09d}"
        final, tmp = self.root / name, self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        torch.save(state, tmp / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        with atomic_write(self.root / "latest") as f:
            f.write(name + "\n")
        for old in self.candidates()[self.keep:]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def candidates(self) -> list[Path]:
        """Complete checkpoint folders, newest first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.glob("step-*") if (p / "trainer_state.pt").is_file()),
                      reverse=True)

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        found = self.candidates()
        return found[0] if found else None

    @staticmethod
    def load_state(folder: Path) -> dict[str, Any]:
        """The trainer state of a checkpoint (``weights_only=True``: no arbitrary unpickling)."""
        return torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)



class EarlyStopping:
    """Stop when the score (lower = better) has not improved for ``patience`` checks (0 = off)."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad = float("inf"), 0

    def update(self, score: float) -> bool:
        """Record ``score``; return True if it is the best so far."""
        if score < self.best - self.min_delta:
            self.best, self.bad = score, 0
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        """``patience`` checks in a row without improvement."""
        return self.patience > 0 and self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Best score and checks since, for the checkpoint."""
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.bad = float(s["best"]), int(s["bad"])
