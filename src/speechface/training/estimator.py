"""Recipe: the speech estimators (CAUSE: masked L1 to per-frame AU targets, Adam).

From Python::

    from speechface.training import EstimatorTrainer, EstimatorTrainConfig
    cfg = EstimatorTrainConfig(data="prepared/av", arch="cnn", out_dir="runs/cnn", epochs=30)
    EstimatorTrainer(cfg).train()        # resumes by itself if runs/cnn has a checkpoint

From the shell: ``speechface train estimator --config cfg.yaml`` (keys = the fields of
:class:`EstimatorTrainConfig`), or ``torchrun --nproc_per_node 2 -m speechface.cli train
estimator ...`` for data-parallel training (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.errors import DataError
from ..data.clips import TrainClip, load_training_clips, split_groups
from ..speech.model import SpeechEstimator
from .engine import MetricWindow, Run, TrainConfig, autocast, eval_mode, train_command

__all__ = ["EstimatorTrainConfig", "EstimatorTrainer"]


@dataclass
class EstimatorTrainConfig(TrainConfig):
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
        exclude_groups: groups (speakers/clips) left out of training and validation entirely,
            e.g. the held-out test speakers when ``val_groups`` is a development split carved
            from the training speakers.
        crop_frames: training window length in frames (frame-level models).
        epochs / max_steps / max_minutes: stop after whichever comes first (0 = no limit).
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
    exclude_groups: list[str] | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    seed: int = 0
    batch_size: int = 16
    crop_frames: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 30
    max_steps: int = 0
    max_minutes: float = 0.0
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


class EstimatorTrainer:
    """Trains a :class:`~speechface.SpeechEstimator` on prepared shards.

    ``setup()`` loads data and builds the model (resuming from the newest checkpoint),
    ``train()`` runs the epochs, ``validate()`` scores the held-out groups. Clips may be passed
    directly (``clips=``, ``val_clips=``) instead of ``config.data``.

    Example:
        >>> EstimatorTrainer(EstimatorTrainConfig(data="prepared/av", epochs=2)).train()  # doctest: +SKIP
    """

    LOG_FIELDS = ["epoch", "step", "train_loss", "val_loss", "val_mae", "lr", "frames_per_s",
                  "seconds"]

    def __init__(self, config: EstimatorTrainConfig, clips: list[TrainClip] | None = None,
                 val_clips: list[TrainClip] | None = None) -> None:
        self.cfg = config
        self._clips, self._val_clips = clips, val_clips

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Load and split the clips, build the model and optimizer; resume from a checkpoint."""
        cfg = self.cfg
        self.run = run = Run(cfg, self.LOG_FIELDS)
        self.state = run.state
        if cfg.init_from:
            model = SpeechEstimator.from_pretrained(cfg.init_from)
            if model.space.name != cfg.space:
                raise DataError(f"init_from model predicts {model.space.name}, config says {cfg.space}")
        else:
            model = SpeechEstimator.create(cfg.arch, space=cfg.space, feature=cfg.feature,
                                           feature_args=cfg.feature_args, name=cfg.name,
                                           **cfg.model_args)
        if self._clips is not None:
            clips = self._clips
        elif not cfg.data:
            raise DataError("no training data: set 'data' to a prepared shard folder")
        else:
            feature = model.config()["feature"]
            clips = load_training_clips(cfg.data, cfg.space, feature["name"], feature["args"])
        if cfg.exclude_groups:
            unknown = set(cfg.exclude_groups) - {c.group for c in clips}
            if unknown:
                raise DataError(f"exclude_groups not in the data: {', '.join(sorted(unknown))}")
            clips = [c for c in clips if c.group not in set(cfg.exclude_groups)]
        if self._val_clips is not None:
            self.train_clips, self.val_clips = clips, self._val_clips
        else:
            self.train_clips, self.val_clips = split_groups(clips, cfg.val_groups,
                                                            cfg.val_fraction, cfg.split_seed)
        if not cfg.init_from:
            allf = torch.cat([c.features for c in self.train_clips])
            model.set_normalization(allf.mean(0), allf.std(0))
        model.name = cfg.name or model.name
        model.info = {**model.info, **cfg.info,
                      "train_groups": sorted({c.group for c in self.train_clips}),
                      "val_groups": sorted({c.group for c in self.val_clips}),
                      **({"excluded_groups": sorted(cfg.exclude_groups)} if cfg.exclude_groups
                         else {})}
        self.model = model.to(run.device)
        self.frame_level = model.network.frame_level
        self.opt = torch.optim.Adam(model.network.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        run.track(self.model, optimizers={"optimizer": self.opt})

    # ------------------------------------------------------------------ data
    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """This rank's batches of (clip index, start frame) for an epoch (seeded by the epoch)."""
        g = np.random.default_rng([self.cfg.seed, epoch])
        items: list[tuple[int, int]] = []
        crop = self.cfg.crop_frames
        for i, c in enumerate(self.train_clips):
            n = len(c.features)
            if not self.frame_level or n <= crop:
                items.append((i, 0))
            else:
                items += [(i, int(s)) for s in g.integers(0, n - crop + 1, size=math.ceil(n / crop))]
        items = self.run.shard([items[j] for j in g.permutation(len(items))])
        bs = self.cfg.batch_size
        return [items[i:i + bs] for i in range(0, len(items), bs)]

    def make_batch(self, items: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """Padded features ``(B, T, F)``, targets, mask ``(B, T)`` and lengths of crops."""
        crop = self.cfg.crop_frames if self.frame_level else None
        xs, ys, ms = [], [], []
        for i, s in items:
            c = self.train_clips[i]
            end = s + crop if crop else len(c.features)
            xs.append(c.features[s:end])
            ys.append(c.targets[s:end])
            ms.append(c.mask[s:end])
        lengths = torch.tensor([len(x) for x in xs])
        x, y, m = (nn.utils.rnn.pad_sequence(t, batch_first=True) for t in (xs, ys, ms))
        if not self.frame_level:  # utterance-level: the target is the mean of valid frames
            w = m.float()[..., None]
            y = (y * w).sum(1) / w.sum(1).clamp_min(1)
            m = m.any(1)
        return x, y, m, lengths

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Features with the model's training mean and std applied."""
        return (x - self.model.feature_mean) / self.model.feature_std

    def loss(self, raw: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The space's masked loss (``cfg.loss``) of raw outputs against targets."""
        return self.model.space.loss_fn(raw.float(), y, m, kind=self.cfg.loss)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run training to the end (or early stop); returns the final metrics."""
        if not hasattr(self, "run"):
            self.setup()
        cfg, run, st = self.cfg, self.run, self.run.state
        while not run.done():
            batches = self.epoch_batches(st.epoch)
            window = MetricWindow()
            self.model.train()
            for items in run.progress(batches[st.batch_in_epoch:],
                                      desc=f"epoch {st.epoch + 1}/{cfg.epochs}"):
                x, y, m, lengths = (t.to(run.device) for t in self.make_batch(items))
                with autocast(run.device, cfg.amp):
                    raw = self.model(self.normalize(x), lengths)
                loss = self.loss(raw, y, m)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                run.sync_grads(self.model.network.parameters(), clip=cfg.grad_clip)
                self.opt.step()
                run.advance()
                window.add(int(lengths.sum()), train_loss=float(loss.detach()))
                if run.out_of_budget():
                    break
            val = self.validate()
            improved = run.stopper.update(val["loss"])
            if st.batch_in_epoch >= len(batches):  # else stopped inside it: resume there
                run.next_epoch()
            if improved and st.step:
                run.save_model(self.model, "best", val)
            train_loss = run.mean(window.means().get("train_loss", float("nan")))
            run.log(window, unit="frames", train_loss=train_loss, val_loss=val["loss"],
                    val_mae=val["mae"], lr=self.opt.param_groups[0]["lr"])
            run.say(f"epoch {st.epoch}: train {train_loss:.4f}  val {val['loss']:.4f}  "
                    f"mae {val['mae']:.4f}  {window.rate():,.0f} frames/s" + ("  *" if improved else ""))
            run.save()
        return run.write_metrics({
            "epochs": st.epoch, "steps": st.step, "best_val_loss": run.stopper.best,
            "seconds": round(run.tick(), 1), "stopped_by_time": run.stopped_by_time,
            "train_clips": len(self.train_clips), "val_clips": len(self.val_clips),
            "train_frames": int(sum(len(c.features) for c in self.train_clips)),
            "val_frames": int(sum(len(c.features) for c in self.val_clips))})

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Masked loss and MAE (of activated values) over the validation clips."""
        tot_loss = tot_abs = n_frames = 0.0
        with eval_mode(self.model):
            for c in self.val_clips:
                raw = self.model(self.normalize(c.features[None].to(self.run.device)))[0].float()
                y, m = c.targets.to(raw.device), c.mask.to(raw.device)
                if not self.frame_level:
                    w = m.float()[:, None]
                    y = ((y * w).sum(0) / w.sum().clamp_min(1))[None]
                    m, raw = m.any()[None], raw[None]
                k = float(m.sum())
                if k:
                    tot_loss += float(self.loss(raw, y, m)) * k
                    tot_abs += float(((self.model.space.activate(raw) - y).abs().mean(-1) * m).sum())
                    n_frames += k
        return {"loss": self.run.mean(tot_loss / max(n_frames, 1)),
                "mae": self.run.mean(tot_abs / max(n_frames, 1))}


@train_command("estimator", EstimatorTrainConfig, help="train a speech estimator on prepared "
               "shards", example="epochs=5 arch=dcnn")
def run_train_estimator(cfg: EstimatorTrainConfig, config_path: str | None) -> dict[str, Any]:
    """Handler of ``speechface train estimator``."""
    return {**EstimatorTrainer(cfg).train(), "model": f"{cfg.out_dir}/best"}
