"""Training the speech estimators (CAUSE recipe: masked L1 to per-frame AU targets, Adam).

From Python::

    from speechface.training import EstimatorTrainer, EstimatorTrainConfig
    cfg = EstimatorTrainConfig(data="prepared/av", arch="cnn", out_dir="runs/cnn", epochs=30)
    EstimatorTrainer(cfg).train()        # resumes by itself if runs/cnn has a checkpoint

From the shell: ``speechface train estimator --config cfg.yaml`` (keys = the fields of
:class:`EstimatorTrainConfig`), or with ``torchrun --nproc_per_node 2 -m speechface.cli train
estimator ...`` for DistributedDataParallel (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._hparams import json_plain
from .._io import write_json
from ..errors import DataError
from ..speech import SpeechEstimator
from .common import (
    CheckpointManager,
    CSVLogger,
    DistInfo,
    EarlyStopping,
    all_reduce_mean,
    autocast,
    init_distributed,
    rng_state,
    seed_everything,
    set_rng_state,
)

__all__ = ["EstimatorTrainConfig", "EstimatorTrainer", "TrainClip", "load_training_clips"]


@dataclass
class TrainClip:
    """One utterance ready for training: features ``(T, F)``, targets ``(T, D)``, mask ``(T,)``."""

    name: str
    group: str
    features: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    audio: torch.Tensor | None = None


@dataclass
class EstimatorTrainConfig:
    """Options of :class:`EstimatorTrainer` (also the keys of a YAML/JSON config file).

    Attributes:
        data: folder(s) of prepared shards (``speechface prepare av``).
        out_dir: where checkpoints, ``best/`` (the trained model folder), ``log.csv`` and
            ``metrics.json`` go. Rerunning with the same folder resumes.
        arch: estimator architecture; ``model_args``: its keyword arguments.
        space: conditioning space; targets are read from ``targets_<space>`` in the shards.
        feature: feature extractor (default: the architecture's); ``feature_args``: its arguments.
        loss: ``"l1"`` (the paper's), ``"mse"``, ``"kl"`` or None for the space's default.
        val_groups: explicit validation groups (speakers/clips); else ``val_fraction`` of the
            groups, drawn with ``split_seed``. Groups never straddle the split.
        crop_frames: training window length in frames (frame-level models).
        epochs / max_steps: stop after whichever comes first (max_steps 0 = no limit).
        patience: early stopping on the validation loss (0 = off).
        amp: bfloat16 autocast (mixed precision).
        grad_clip: max gradient norm (0 = off).
        checkpoint_every: also checkpoint every N optimizer steps inside an epoch (0 = epoch ends).
        init_from: a model folder/name to fine-tune (keeps its feature normalisation).
        name: the model name written into ``config.json``.
        info: extra metadata for ``config.json`` (teacher, data, licence).
    """

    data: str | list[str] = ""
    out_dir: str = "runs/estimator"
    arch: str = "cnn"
    space: str = "au17"
    model_args: dict[str, Any] = field(default_factory=dict)
    feature: str | None = None
    feature_args: dict[str, Any] = field(default_factory=dict)
    loss: str | None = "l1"
    val_groups: list[str] | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    seed: int = 0
    batch_size: int = 16
    crop_frames: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 30
    max_steps: int = 0
    patience: int = 8
    grad_clip: float = 1.0
    amp: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    device: str = "cpu"
    init_from: str | None = None
    name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


def load_training_clips(data: str | list[str], space: str, feature: str | None,
                        feature_args: dict[str, Any] | None = None, *,
                        keep_audio: bool = False) -> list[TrainClip]:
    """Read prepared shards into memory as :class:`TrainClip` s.

    Features stored in the shards are used when they were made by the requested extractor with
    the same settings; otherwise they are recomputed from the shard's 16 kHz audio.
    """
    from ..data.shards import list_clips, read_clip
    from ..registry import FEATURES

    roots = [data] if isinstance(data, (str, Path)) else list(data)
    fx = FEATURES.create(feature or "logmel", **(feature_args or {}))
    fx_cfg = {"name": fx.registry_name, "args": fx.config()}
    key = f"targets_{space}"
    clips: list[TrainClip] = []
    for root in roots:
        for rec in list_clips(root):
            arrays, _ = read_clip(root, rec["name"])
            if key == "targets_blendshapes52" and key not in arrays and "blendshapes" in arrays:
                from ..blendshapes import mediapipe_to_arkit52  # MediaPipe order -> ARKit-52

                arrays = {**arrays, key: mediapipe_to_arkit52(arrays["blendshapes"])}
            if key not in arrays:
                raise DataError(f"{root}: clip {rec['name']} has no {key!r} (have: "
                                f"{', '.join(sorted(arrays))}); prepare it with a teacher for {space}")
            stored = dict(rec.get("features") or {})
            same = stored.pop("name", None) == fx_cfg["name"] and stored == fx_cfg["args"]
            if same and "features" in arrays:
                feats = torch.from_numpy(arrays["features"]).float()
            else:
                with torch.no_grad():
                    feats = fx(torch.from_numpy(arrays["audio"]).float())
            t = min(feats.shape[-1], len(arrays[key]))
            clips.append(TrainClip(
                name=str(rec["name"]),
                group=str(rec.get("speaker", rec.get("group", rec["name"]))),
                features=feats[:, :t].T.contiguous(),
                targets=torch.from_numpy(np.asarray(arrays[key][:t], dtype=np.float32)),
                mask=torch.from_numpy(np.asarray(arrays["mask"][:t], dtype=bool)),
                audio=torch.from_numpy(arrays["audio"]).float() if keep_audio else None,
            ))
    if not clips:
        raise DataError(f"no prepared clips found in {', '.join(map(str, roots))}")
    return clips


def split_groups(clips: list[TrainClip], val_groups: list[str] | None, val_fraction: float,
                 seed: int) -> tuple[list[TrainClip], list[TrainClip]]:
    """Group-disjoint train/validation split (a group = a speaker or a clip)."""
    groups = sorted({c.group for c in clips})
    if val_groups is None:
        rng = np.random.default_rng(seed)
        n_val = max(1, round(len(groups) * val_fraction))
        val_groups = list(rng.permutation(groups)[:n_val])
    unknown = set(val_groups) - set(groups)
    if unknown:
        raise DataError(f"validation groups not in the data: {', '.join(sorted(unknown))}")
    val = [c for c in clips if c.group in set(val_groups)]
    train = [c for c in clips if c.group not in set(val_groups)]
    if not train or not val:
        raise DataError(f"split left {len(train)} training and {len(val)} validation clips; "
                        f"need both (groups: {len(groups)})")
    return train, val


class EstimatorTrainer:
    """Trains a :class:`~speechface.SpeechEstimator` on prepared shards.

    ``setup()`` loads data and builds the model, ``train()`` runs epochs with validation,
    early stopping, checkpoints and automatic resume, ``save_checkpoint()`` /
    ``load_checkpoint()`` are the explicit state hooks. Clips may also be passed directly
    (``clips=``) instead of ``config.data``.
    """

    def __init__(self, config: EstimatorTrainConfig, clips: list[TrainClip] | None = None,
                 val_clips: list[TrainClip] | None = None) -> None:
        self.cfg = config
        self._clips, self._val_clips = clips, val_clips
        self.dist: DistInfo = DistInfo()
        self.out = Path(config.out_dir)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        cfg = self.cfg
        self.dist = init_distributed()
        seed_everything(cfg.seed)
        self.device = torch.device(cfg.device if cfg.device != "cuda" else f"cuda:{self.dist.local_rank}")
        if cfg.init_from:
            model = SpeechEstimator.from_pretrained(cfg.init_from)
            if model.space.name != cfg.space:
                raise DataError(f"init_from model predicts {model.space.name}, config says {cfg.space}")
        else:
            model = SpeechEstimator.create(cfg.arch, space=cfg.space, feature=cfg.feature,
                                           feature_args=cfg.feature_args, name=cfg.name,
                                           **cfg.model_args)
        feature = model.config()["feature"]
        if self._clips is not None:
            clips = self._clips
        else:
            clips = load_training_clips(cfg.data, cfg.space, feature["name"], feature["args"])
        if self._val_clips is not None:
            self.train_clips, self.val_clips = clips, self._val_clips
        else:
            self.train_clips, self.val_clips = split_groups(clips, cfg.val_groups,
                                                            cfg.val_fraction, cfg.split_seed)
        if not cfg.init_from:
            allf = torch.cat([c.features for c in self.train_clips])
            model.set_normalization(allf.mean(0), allf.std(0))
        model.name = cfg.name or model.name
        model.pretrained = True  # what this trainer saves are trained weights
        model.info = {**model.info, **cfg.info,
                      "train_groups": sorted({c.group for c in self.train_clips}),
                      "val_groups": sorted({c.group for c in self.val_clips})}
        self.model = model.to(self.device)
        self.net: nn.Module = self.model
        if self.dist.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
        self.opt = torch.optim.Adam(self.model.network.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        self.stopper = EarlyStopping(cfg.patience)
        self.ckpt = CheckpointManager(self.out / "checkpoints", keep=cfg.keep_checkpoints)
        self.log = CSVLogger(self.out / "log.csv",
                             ["epoch", "step", "train_loss", "val_loss", "val_mae", "lr",
                              "frames_per_s", "seconds"], enabled=self.dist.is_main)
        self.frame_level = self.model.network.frame_level
        latest = self.ckpt.latest()
        if latest is not None:
            self.load_checkpoint(latest)

    # ------------------------------------------------------------------ data
    def _epoch_items(self, epoch: int) -> list[tuple[int, int]]:
        """(clip index, start frame) pairs for an epoch, identical on every rank, then sharded."""
        g = np.random.default_rng([self.cfg.seed, epoch])
        items: list[tuple[int, int]] = []
        crop = self.cfg.crop_frames
        for i, c in enumerate(self.train_clips):
            n = len(c.features)
            if not self.frame_level or n <= crop:
                items.append((i, 0))
                continue
            k = math.ceil(n / crop)
            items += [(i, int(s)) for s in g.integers(0, n - crop + 1, size=k)]
        order = g.permutation(len(items))
        items = [items[j] for j in order]
        per_rank = len(items) // self.dist.world_size
        return items[self.dist.rank * per_rank:(self.dist.rank + 1) * per_rank]

    def _batch(self, items: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        crop = self.cfg.crop_frames if self.frame_level else None
        xs, ys, ms = [], [], []
        for i, s in items:
            c = self.train_clips[i]
            end = s + crop if crop else len(c.features)
            xs.append(c.features[s:end])
            ys.append(c.targets[s:end])
            ms.append(c.mask[s:end])
        lengths = torch.tensor([len(x) for x in xs])
        x = nn.utils.rnn.pad_sequence(xs, batch_first=True)
        y = nn.utils.rnn.pad_sequence(ys, batch_first=True)
        m = nn.utils.rnn.pad_sequence(ms, batch_first=True)
        if not self.frame_level:  # utterance-level: the target is the mean of valid frames
            w = m.float()[..., None]
            y = (y * w).sum(1) / w.sum(1).clamp_min(1)
            m = m.any(1)
        return x, y, m, lengths

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.model.feature_mean) / self.model.feature_std

    def _loss(self, raw: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.model.space.loss_fn(raw.float(), y, m, kind=self.cfg.loss)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run training to the end (or early stop); returns the final metrics."""
        if not hasattr(self, "model"):
            self.setup()
        cfg = self.cfg
        start_time = time.perf_counter()
        while self.epoch < cfg.epochs and not self.stopper.should_stop and not self._steps_done():
            items = self._epoch_items(self.epoch)
            batches = [items[i:i + cfg.batch_size] for i in range(0, len(items), cfg.batch_size)]
            self.net.train()
            losses: list[float] = []
            frames, t0 = 0, time.perf_counter()
            bar = tqdm(batches[self.batch_in_epoch:], desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                       disable=not (cfg.progress and self.dist.is_main), leave=False)
            for batch in bar:
                x, y, m, lengths = (t.to(self.device) for t in self._batch(batch))
                x = self._normalize(x)
                with autocast(self.device, cfg.amp):
                    raw = self.net(x, lengths)
                loss = self._loss(raw, y, m)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.network.parameters(), cfg.grad_clip)
                self.opt.step()
                self.step += 1
                self.batch_in_epoch += 1
                frames += int(lengths.sum())
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if self._steps_done():
                    break
            fps = frames * self.dist.world_size / max(time.perf_counter() - t0, 1e-9)
            train_loss = all_reduce_mean(float(np.mean(losses)) if losses else float("nan"), self.dist)
            val = self.validate()
            improved = self.stopper.update(val["loss"])
            if self.batch_in_epoch >= len(batches):  # else stopped by max_steps: resume mid-epoch
                self.epoch += 1
                self.batch_in_epoch = 0
            if improved and self.dist.is_main:
                self.model.save_pretrained(self.out / "best")
                write_json(self.out / "best" / "val_metrics.json",
                           {"epoch": self.epoch, "step": self.step, **val})
            self.log.log(epoch=self.epoch, step=self.step, train_loss=train_loss, val_loss=val["loss"],
                         val_mae=val["mae"], lr=self.opt.param_groups[0]["lr"], frames_per_s=fps,
                         seconds=time.perf_counter() - start_time)
            if self.dist.is_main and cfg.progress:
                tqdm.write(f"epoch {self.epoch}: train {train_loss:.4f}  val {val['loss']:.4f}  "
                           f"mae {val['mae']:.4f}  {fps:,.0f} frames/s"
                           + ("  *" if improved else ""))
            self.save_checkpoint()
        result = {"epochs": self.epoch, "steps": self.step, "best_val_loss": self.stopper.best,
                  "train_clips": len(self.train_clips), "val_clips": len(self.val_clips),
                  "train_frames": int(sum(len(c.features) for c in self.train_clips)),
                  "val_frames": int(sum(len(c.features) for c in self.val_clips))}
        if self.dist.is_main:
            write_json(self.out / "metrics.json", result)
        return result

    def _steps_done(self) -> bool:
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Masked loss and MAE (of activated values) over the validation clips."""
        self.net.eval()
        tot_loss = tot_abs = n_frames = n_vals = 0.0
        for c in self.val_clips:
            x = self._normalize(c.features[None].to(self.device))
            y, m = c.targets.to(self.device), c.mask.to(self.device)
            raw = self.model(x)[0].float()
            if not self.frame_level:
                w = m.float()[:, None]
                y = (y * w).sum(0) / w.sum().clamp_min(1)
                m = m.any()[None]
                raw, y = raw[None], y[None]
            k = float(m.sum())
            if k == 0:
                continue
            tot_loss += float(self._loss(raw, y, m)) * k
            err = (self.model.space.activate(raw) - y).abs().mean(-1)
            tot_abs += float((err * m).sum())
            n_frames += k
            n_vals += k
        loss = tot_loss / max(n_frames, 1)
        return {"loss": all_reduce_mean(loss, self.dist),
                "mae": all_reduce_mean(tot_abs / max(n_vals, 1), self.dist)}

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (rank 0) with model, optimizer, counters, RNG and early-stop state."""
        if not self.dist.is_main:
            return None
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                 "optimizer": self.opt.state_dict(), "rng": rng_state(),
                 "stopper": self.stopper.state_dict(),
                 "config": json_plain(dataclasses.asdict(self.cfg))}
        return self.ckpt.save(self.step, self.model.save_pretrained, state)

    def load_checkpoint(self, folder: Path) -> None:
        """Restore model weights, optimizer, counters and RNG from a checkpoint folder."""
        from ..hub import load_state

        load_state(self.model, folder)
        state = CheckpointManager.load_state(folder)
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.stopper.load_state_dict(state["stopper"])
        set_rng_state(state["rng"])
        self.log.truncate_after(self.step)
        if self.dist.is_main:  # always said: a resumed run must never pass for a fresh one
            print(f"resumed from {folder} (epoch {self.epoch}, step {self.step})", file=sys.stderr)
