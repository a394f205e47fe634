"""The training engine: the parts every recipe in :mod:`speechface.training` shares.

A recipe (``estimator.py``, ``expression.py``, ``emotion.py``, ``ganimation.py``,
``warp.py``) keeps its config, its set-up, the visible loop body (batch -> loss -> step), its
validation and its samples. Everything else is here, in one place:

- :class:`Run`: one train state (:class:`TrainState`: step, epoch, position in the epoch,
  seconds, the recipe's own counters), the optimizers and schedulers, RNG states, early
  stopping and the config, checkpointed one way and resumed with an announcement; the stop
  rules (epochs with patience, ``max_steps``, ``max_minutes``); gradient averaging over
  ``torchrun`` processes (rank 0 writes); the final save and ``metrics.json``.
- :class:`MetricWindow`: running means and throughput for ``log.csv`` and the tqdm bar.
- from :mod:`speechface.training.config` (re-exported here): :class:`TrainConfig`, config
  dataclasses checked against their field types and bounds when they are built, before
  anything is allocated; :func:`train_command`, which turns a config dataclass and a function
  into ``speechface train NAME --config FILE --set KEY=VALUE``.

Checkpoint layout (every recipe)::

    OUT/checkpoints/step-000001200/model.safetensors   the model (+ config.json: a folder that
                                   config.json         from_pretrained loads)
                                   critic.safetensors  further modules, one file each
                                   trainer_state.pt    optimizers, schedulers, state, RNG, early
                                                       stopping, config: plain tensors and
                                                       containers (torch.load weights_only=True)
    OUT/checkpoints/latest                             the newest complete checkpoint's name

A rerun with the same ``out_dir`` resumes from the newest checkpoint that reads back whole,
falling back to the one before when the newest is damaged.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..core._hparams import json_plain
from ..core._io import atomic_path, atomic_write, write_json
from ..core.errors import DataError
from .config import (
    TrainConfig,
    check_device,
    config_from_dict,
    finite_json,
    load_config_file,
    train_command,
)

__all__ = ["Run", "TrainState", "MetricWindow", "CheckpointManager", "CSVLogger",
           "EarlyStopping", "DistInfo", "init_distributed", "seed_everything", "rng_state",
           "set_rng_state", "autocast", "eval_mode", "TrainConfig", "config_from_dict",
           "load_config_file", "train_command", "finite_json"]


# ------------------------------------------------------------------------------------ RNG, ranks
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """All RNG states as tensors/lists (loadable with ``weights_only=True``); CUDA: the current
    device's."""
    py = random.getstate()
    n = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]],
            "numpy": [n[0], torch.from_numpy(n[1].astype(np.int64)), int(n[2]), int(n[3]),
                      float(n[4])],
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclasses.dataclass
class DistInfo:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 (the process that writes)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1; gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on CPU or CUDA when ``enabled`` (mixed precision), else a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ------------------------------------------------------------------------------------ pieces
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


@dataclasses.dataclass
class TrainState:
    """Counters of a run; recipes add their own (numbers, tensors) as attributes.

    Everything in ``vars(state)`` is checkpointed and restored.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seconds: float = 0.0


_LEGACY_OPTIMIZERS = {"optimizer": "optimizer", "opt": "optimizer", "opt_g": "g", "opt_d": "d"}


class Run:
    """One training run of a recipe: state, checkpoints, resume, stop rules, logs, ranks.

    Built at the start of a recipe's ``setup()``: joins the ``torchrun`` process group, seeds
    every RNG with ``cfg.seed``, picks ``cfg.device``. The recipe then builds its models and
    optimizers and calls :meth:`track` (which also resumes). In the loop: :meth:`sync_grads`
    between ``backward()`` and ``step()``, :meth:`advance` after it, :meth:`done` /
    :meth:`out_of_budget` as the loop conditions, :meth:`log` per window.

    Args:
        cfg: the recipe's config (``out_dir``, ``seed``, ``device``, ``progress`` and, where the
            recipe has them, ``epochs``, ``max_steps``, ``max_minutes``, ``patience``,
            ``checkpoint_every``, ``keep_checkpoints``).
        log_fields: the columns of ``OUT/log.csv``.
    """

    def __init__(self, cfg: Any, log_fields: list[str]) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.dist = init_distributed()
        threads = getattr(cfg, "num_threads", 0) or getattr(cfg, "threads", 0)
        if threads:
            torch.set_num_threads(threads)
        seed_everything(cfg.seed)
        device = check_device(getattr(cfg, "device", "cpu"))
        if device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank if device.index is None
                                  else device.index)
            torch.cuda.set_device(device)  # the current device: its RNG is checkpointed
        self.device = device
        self.state = TrainState()
        self.stopper = EarlyStopping(getattr(cfg, "patience", 0))
        self.ckpt = CheckpointManager(self.out / "checkpoints", getattr(cfg, "keep_checkpoints", 2))
        self.log_file = CSVLogger(self.out / "log.csv", log_fields, enabled=self.dist.is_main)
        self.model: Any = None
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.stopped_by_time = False
        self._clock = time.perf_counter()
        self._seconds_before = 0.0

    # ---------------------------------------------------------------- set-up and resume
    def track(self, model: Any, modules: dict[str, nn.Module] | None = None,
              optimizers: dict[str, torch.optim.Optimizer] | None = None,
              schedulers: dict[str, Any] | None = None, resume: bool = True) -> Path | None:
        """Register what a checkpoint holds and resume from the newest readable checkpoint.

        ``model`` has ``save_pretrained`` (the loadable folder); ``modules`` are further
        networks saved as ``NAME.safetensors``. On several ranks, rank 0's weights are copied to
        the others and each rank then draws its own random numbers. Returns the checkpoint
        resumed from (announced on stderr), or None.
        """
        self.model, self.modules = model, dict(modules or {})
        self.optimizers, self.schedulers = dict(optimizers or {}), dict(schedulers or {})
        if self.dist.distributed:
            for m in [model, *self.modules.values()]:
                for t in m.state_dict().values():
                    dist.broadcast(t, 0)
            seed_everything(self.cfg.seed + 1009 * self.dist.rank)
        return self.resume() if resume else None

    def resume(self) -> Path | None:
        """Restore everything from the newest checkpoint that reads back whole (older ones are
        fallbacks); say so on stderr. A folder with checkpoints of which none reads is an error."""
        tried = []
        for folder in self.ckpt.candidates():
            try:  # a later candidate overwrites whatever a failed one applied
                self._apply(folder, self._read_checkpoint(folder))
            except Exception as e:  # noqa: BLE001 - any damage makes it a fallback case
                reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
                tried.append(folder.name)
                if self.dist.is_main:  # kept for a look, out of the way of the next saves
                    aside = folder.with_name(f"unreadable-{folder.name}")
                    print(f"speechface: warning: checkpoint {folder} is unreadable ({reason}); "
                          f"moved to {aside.name}, trying the one before", file=sys.stderr)
                    shutil.rmtree(aside, ignore_errors=True)
                    folder.rename(aside)
                continue
            self.log_file.truncate_after(self.state.step)
            if self.dist.is_main:  # always said: a resumed run must never pass for a fresh one
                print(f"resumed from {folder} (epoch {self.state.epoch}, step {self.state.step})",
                      file=sys.stderr)
            return folder
        if tried:
            raise DataError(f"{self.ckpt.root}: no readable checkpoint ({', '.join(tried)}); "
                            "move the folder away to start afresh")
        return None

    def _read_checkpoint(self, folder: Path) -> dict[str, Any]:
        """Everything of a checkpoint in memory, checked against the tracked objects."""
        from safetensors.torch import load_file

        try:
            state = CheckpointManager.load_state(folder)
        except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors alike
            raise DataError(f"trainer_state.pt is truncated, damaged or not a torch checkpoint "
                            f"({type(e).__name__})") from None
        if not isinstance(state, dict):
            raise DataError("trainer_state.pt does not hold a mapping")
        if "format" not in state:  # checkpoints written before the engine
            state = {"state": {k: v for k, v in state.items() if not isinstance(v, dict)
                               or k == "stopper"},
                     "optimizers": {_LEGACY_OPTIMIZERS[k]: v for k, v in state.items()
                                    if k in _LEGACY_OPTIMIZERS},
                     "schedulers": {}, "rng": state["rng"], "stopper": state.get("stopper")}
            state["state"].pop("stopper", None)
        missing = set(self.optimizers) - set(state["optimizers"])
        if missing:
            raise DataError(f"no state of optimizer(s) {', '.join(sorted(missing))}")
        state["_weights"] = {name: load_file(str(folder / f"{name}.safetensors"))
                             for name in self.modules}
        return state

    def _apply(self, folder: Path, state: dict[str, Any]) -> None:
        from ..core.hub import load_state

        load_state(self.model, folder)
        for name, sd in state["_weights"].items():
            self.modules[name].load_state_dict(sd, strict=True)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        for k, v in state["state"].items():
            setattr(self.state, k, v.to(self.device) if isinstance(v, torch.Tensor) else v)
        if state.get("stopper") is not None:
            self.stopper.load_state_dict(state["stopper"])
        set_rng_state(state["rng"])
        if self.dist.distributed:
            seed_everything(self.cfg.seed + 1009 * self.dist.rank + self.state.step)
        self._seconds_before = float(self.state.seconds)
        self._clock = time.perf_counter()

    def save(self, only_if_new: bool = False) -> Path | None:
        """Write a checkpoint of everything tracked (rank 0)."""
        self.tick()
        if not self.dist.is_main:
            return None
        latest = self.ckpt.latest()
        if only_if_new and latest is not None and latest.name == f"step-{self.state.step:09d}":
            return latest
        state = {"format": 1,
                 "state": {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                           for k, v in vars(self.state).items()},
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                 "rng": rng_state(), "stopper": self.stopper.state_dict(),
                 "config": json_plain(dataclasses.asdict(self.cfg))}
        return self.ckpt.save(self.state.step, self._write_weights, state)

    def _write_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        self.model.save_pretrained(folder)
        for name, m in self.modules.items():
            sd = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}
            save_file(sd, str(folder / f"{name}.safetensors"), metadata={"format": "pt"})

    # ---------------------------------------------------------------- the loop
    def tick(self) -> float:
        """Update and return ``state.seconds`` (training time over all runs of this folder)."""
        self.state.seconds = self._seconds_before + time.perf_counter() - self._clock
        return self.state.seconds

    def out_of_budget(self) -> bool:
        """``max_steps`` reached or ``max_minutes`` used up (check after every step)."""
        cfg, st = self.cfg, self.state
        if getattr(cfg, "max_steps", 0) and st.step >= cfg.max_steps:
            return True
        if getattr(cfg, "max_minutes", 0) and self.tick() >= 60 * cfg.max_minutes:
            self.stopped_by_time = True
            return True
        return False

    def done(self) -> bool:
        """Any stop rule: budget (:meth:`out_of_budget`), ``epochs``, early stopping."""
        epochs = getattr(self.cfg, "epochs", 0)
        return (self.out_of_budget() or bool(epochs and self.state.epoch >= epochs)
                or self.stopper.should_stop)

    def sync_grads(self, params: Iterable[torch.nn.Parameter], clip: float = 0.0) -> None:
        """Average gradients over ranks (what DDP does), then clip their norm (``clip`` > 0)."""
        params = [p for p in params if p.grad is not None]
        if self.dist.distributed:
            for p in params:
                dist.all_reduce(p.grad)
                p.grad /= self.dist.world_size
        if clip > 0:
            nn.utils.clip_grad_norm_(params, clip)

    def advance(self) -> None:
        """Count one optimizer step (and batch of the epoch); checkpoint every ``checkpoint_every``."""
        self.state.step += 1
        self.state.batch_in_epoch += 1
        every = getattr(self.cfg, "checkpoint_every", 0)
        if every and self.state.step % every == 0:
            self.save()

    def next_epoch(self) -> None:
        """Count a finished epoch; the next one starts at its first batch."""
        self.state.epoch += 1
        self.state.batch_in_epoch = 0

    def mean(self, value: float) -> float:
        """Average a float over ranks."""
        if not self.dist.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.dist.world_size

    def shard(self, items: list[Any] | np.ndarray) -> Any:
        """This rank's equal share of ``items`` (the same order on every rank first)."""
        per = len(items) // self.dist.world_size
        return items[self.dist.rank * per:(self.dist.rank + 1) * per]

    def progress(self, it: Iterable[Any] | None = None, **kw: Any) -> Any:
        """A tqdm bar shown on rank 0 when ``cfg.progress``."""
        from tqdm.auto import tqdm

        return tqdm(it, disable=not (getattr(self.cfg, "progress", True) and self.dist.is_main),
                    leave=False, **kw)

    def say(self, text: str) -> None:
        """A progress line (rank 0, when ``cfg.progress``)."""
        if self.dist.is_main and getattr(self.cfg, "progress", True):
            from tqdm.auto import tqdm

            tqdm.write(text)

    def log(self, window: MetricWindow | None = None, unit: str = "images", **row: Any) -> None:
        """A ``log.csv`` row: the window's means and ``<unit>_per_s`` (over all ranks), plus ``row``."""
        full = {"step": self.state.step, "epoch": self.state.epoch, "seconds": self.tick()}
        if window is not None:
            full.update(window.means())
            full[f"{unit}_per_s"] = window.rate() * self.dist.world_size
        self.log_file.log(**{**full, **row})

    # ---------------------------------------------------------------- the end
    def save_model(self, model: Any, name: str, metrics: dict[str, Any] | None = None,
                   **kw: Any) -> Path:
        """Save ``model`` as a pretrained folder ``OUT/name`` (rank 0), with ``val_metrics.json``.

        Refuses before any optimizer step: untrained weights are never marked pretrained.
        """
        if self.state.step < 1:
            raise DataError(f"{self.out}: no training step was taken; nothing to save")
        folder = self.out / name
        if self.dist.is_main:
            model.pretrained = True
            model.save_pretrained(folder, **kw)
            if metrics is not None:
                write_json(folder / "val_metrics.json", finite_json(
                    {"epoch": self.state.epoch, "step": self.state.step, **metrics}))
        return folder

    def write_metrics(self, result: dict[str, Any], name: str = "metrics.json") -> dict[str, Any]:
        """Write ``OUT/metrics.json`` (rank 0; NaN and infinities become null); return ``result``."""
        result = finite_json(result)
        if self.dist.is_main:
            write_json(self.out / name, result)
        return result


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode inside the block, their previous modes restored after it."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)

