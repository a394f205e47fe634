"""The training engine: the parts every recipe in :mod:`speechface.training` shares.

A recipe (``estimator.py``, ``expression.py``, ``emotion.py``, ``ganimation.py``,
``warp.py``) keeps its config, its set-up, the visible loop body (batch -> loss -> step), its
validation and its samples. Everything else is here, in one place:

- :class:`Run`: one train state (:class:`TrainState`: step, epoch, position in the epoch,
  seconds, the recipe's own counters), the optimizers and schedulers, RNG states, early
  stopping and the config, checkpointed one way and resumed with an announcement; the stop
  rules (epochs with patience, ``max_steps``, ``max_minutes``); gradient averaging over
  ``torchrun`` processes (rank 0 writes); the final save and ``metrics.json``.
- the pieces it is built from, re-exported here: :mod:`~speechface.training.ranks` (seeds,
  RNG states, ``torchrun`` ranks, autocast), :mod:`~speechface.training.checkpoints`
  (checkpoint folders, early stopping), :mod:`~speechface.training.logs` (:class:`MetricWindow`:
  running means and throughput for ``log.csv`` and the tqdm bar; :class:`CSVLogger`).
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
import dataclasses
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..core._hparams import json_plain
from ..core._io import write_json
from ..core.errors import DataError
from .checkpoints import CheckpointManager, EarlyStopping
from .config import (
    TrainConfig,
    check_device,
    config_from_dict,
    finite_json,
    load_config_file,
    train_command,
)
from .logs import CSVLogger, MetricWindow
from .ranks import (
    DistInfo,
    autocast,
    init_distributed,
    rng_state,
    seed_everything,
    set_rng_state,
)

__all__ = ["Run", "TrainState", "MetricWindow", "CheckpointManager", "CSVLogger",
           "EarlyStopping", "DistInfo", "init_distributed", "seed_everything", "rng_state",
           "set_rng_state", "autocast", "eval_mode", "TrainConfig", "config_from_dict",
           "load_config_file", "train_command", "finite_json"]


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

