"""Pieces every trainer shares: configs, seeding, distributed set-up, checkpoints, CSV logs.

A checkpoint folder ``OUT/checkpoints/step-000001200/`` holds the model (``model.safetensors``
+ ``config.json``, loadable with ``from_pretrained``) and ``trainer_state.pt`` (optimizer,
scheduler, step, epoch, RNG states, best score) saved with plain tensors and containers only, so
it loads with ``torch.load(weights_only=True)``. ``OUT/checkpoints/latest`` names the newest
complete checkpoint; a rerun with the same output folder resumes from it. Only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .._io import atomic_path, atomic_write
from ..errors import DataError

__all__ = ["seed_everything", "DistInfo", "init_distributed", "CheckpointManager", "CSVLogger",
           "load_config_file", "config_from_dict", "autocast", "EarlyStopping"]

C = TypeVar("C")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """All RNG states as tensors/lists (loadable with ``weights_only=True``)."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))


@dataclasses.dataclass
class DistInfo:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1).

    ``gloo`` is used on CPU, ``nccl`` when CUDA is available (or pass ``backend``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Average a Python float over processes."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on CPU or CUDA when ``enabled`` (mixed precision), else a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class CheckpointManager:
    """Numbered checkpoint folders with a ``latest`` pointer; keeps the newest ``keep``.

    Args:
        root: folder for the checkpoints (``OUT/checkpoints``).
        keep: how many checkpoints to keep.
    """

    def __init__(self, root: str | os.PathLike[str], keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = keep

    def save(self, step: int, save_model: Callable[[Path], Any], state: dict[str, Any]) -> Path:
        """Write a checkpoint: ``save_model(folder)`` writes the model, then the trainer state.

        The folder is built under a temporary name and renamed when complete; the pointer is
        updated last, so a kill at any moment leaves the previous checkpoint usable.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:09d}"
        final = self.root / name
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_model(tmp)
        torch.save(state, tmp / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        with atomic_write(self.root / "latest") as f:
            f.write(name + "\n")
        for old in sorted(p for p in self.root.glob("step-*") if p.is_dir())[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        folder = self.root / pointer.read_text().strip()
        return folder if (folder / "trainer_state.pt").is_file() else None

    @staticmethod
    def load_state(folder: Path) -> dict[str, Any]:
        """The trainer state of a checkpoint (``weights_only=True``: no arbitrary unpickling)."""
        return torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)


class CSVLogger:
    """Append rows to ``path`` (header written once); rank 0 only."""

    def __init__(self, path: str | os.PathLike[str], fields: list[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.fields = fields
        self.enabled = enabled

    def log(self, **row: Any) -> None:
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


class EarlyStopping:
    """Stop when the validation score has not improved by ``min_delta`` for ``patience`` checks."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = float("inf")
        self.bad = 0

    def update(self, score: float) -> bool:
        """Record ``score`` (lower is better); return True if it is the best so far."""
        if score < self.best - self.min_delta:
            self.best, self.bad = score, 0
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best, self.bad = float(s["best"]), int(s["bad"])


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training config from JSON or YAML (YAML needs PyYAML; ``safe_load`` only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(f"{path}: cannot read config ({e.strerror})") from e
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise DataError(f"{path}: YAML configs need PyYAML (pip install pyyaml)") from e
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: a config must be a mapping of option names to values")
    return data


def config_from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build a config dataclass, rejecting unknown keys with a message naming them."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise DataError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(names))}")
    return cls(**data)


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start
