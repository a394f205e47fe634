"""Training the facial-expression recogniser on FER+ (the image-side emotion teacher).

Loss: the FER+ paper (Barsoum et al., 2016, arXiv:1608.01041) compares four label schemes:
majority vote (MV), multi-label (ML), probabilistic label drawing (PLD) and cross-entropy loss
(CEL). We train with **CEL** by default: the target of each face is the distribution of its 10
crowd votes over the 8 emotions after dropping the ``unknown`` and ``NF`` (not a face) columns and
renormalising, and the loss is the cross-entropy ``-sum_k t_k log p_k`` (equal to the KL
divergence up to a constant). CEL keeps the annotators' ambiguity (a face voted 6 happy / 4
surprise is not forced to one class), uses every vote, needs no sampling and was within a point
of the best scheme (PLD) in the paper. Images whose most-voted column is ``unknown``/``NF`` are
dropped from training (``drop_unknown=True``, as in the FER+ reference code); PLD
(``scheme="probability"``: a one-hot label drawn from the distribution for every sample, anew
each epoch) and MV (``scheme="majority"``) are available for comparison. We do not apply the
reference code's 75%-coverage pruning of the distribution.

Validation (every epoch, on FER+ ``valid``): majority-vote accuracy, i.e. the argmax of the
prediction against the most-voted emotion, over the valid images whose top vote is an emotion
(``val_acc``, used to pick the best model), plus macro-F1 and ``val_acc_paper``: the FER+
paper's test protocol (single votes removed, only faces whose top emotion has more than half of
all votes).

Augmentation, in plain torch on whole batches (``F.affine_grid`` / ``F.grid_sample``): random
horizontal flip, rotation within +-10 degrees, scale 0.9-1.1 and shift within +-4 pixels; optional
brightness/contrast jitter (``brightness``, ``contrast``) and random erasing of a rectangle
(``erase_prob``); all three in :mod:`speechface.data.image_augment`.

Held-out selection (``holdout > 0``): that fraction of the train split (a seeded random draw) is
kept out of training; the per-epoch ``val_*`` metrics and the choice of the best checkpoint then
use it, and FER+ valid is evaluated once, on the chosen model, at the end (``valid_*`` in
``metrics.json``, ``best/valid_metrics.json``), so valid stays an untouched test split.

From Python::

    from speechface.training.expression import ExpressionTrainConfig, ExpressionTrainer
    cfg = ExpressionTrainConfig(data="../shared/data/ferplus/ferplus_trainval.npz",
                                out_dir="runs/fer", epochs=12)
    ExpressionTrainer(cfg).train()      # resumes by itself if runs/fer has a checkpoint

From the shell: ``speechface train expression --config configs/expression_ferplus.yaml``
(keys = the fields of :class:`ExpressionTrainConfig`; ``--set key=value`` overrides).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..data.ferplus import FerPlus, load_ferplus
from ..data.image_augment import augment_batch, erase_batch, jitter_batch
from ..evaluation.emotion import evaluate_ferplus
from ..spaces.space import EMOTION8
from ..teachers.expression import ExpressionRecognizer
from .engine import MetricWindow, Run, TrainConfig, autocast, train_command

__all__ = ["ExpressionTrainConfig", "ExpressionTrainer"]

SCHEMES = ("crossentropy", "probability", "majority")


@dataclass
class ExpressionTrainConfig(TrainConfig):
    """Options of :class:`ExpressionTrainer` (also the keys of a YAML/JSON config file).

    Attributes:
        data: the packed FER+ file (``<shared>/data/ferplus/ferplus_trainval.npz``).
        out_dir: where checkpoints, ``best/`` (the trained model folder), ``log.csv``,
            ``metrics.json`` and ``confusion.png`` go. Rerunning with the same folder resumes.
        arch / model_args: expression architecture (``"fer_cnn"``) and its keyword arguments.
        scheme: ``"crossentropy"`` (CEL, soft vote distribution; default), ``"probability"``
            (PLD) or ``"majority"`` (MV); see the module notes.
        min_votes / drop_unknown: training-label cleaning passed to the FER+ reader.
        train_limit / val_limit: use only the first N images of a split (tests, quick looks).
        optimizer: ``"sgd"`` (Nesterov momentum), ``"adam"`` or ``"adamw"``.
        lr / momentum / weight_decay: optimizer settings.
        scheduler: ``"cosine"`` (linear warm-up for ``warmup_epochs``, then cosine decay to 0
            at the last step) or ``"constant"``.
        epochs / max_steps / max_minutes: stop after whichever comes first (0 = no limit).
        patience: early stopping on validation accuracy (0 = off).
        flip / rotate_deg / scale_min / scale_max / shift_px / pad_mode: augmentation
            (``augment=False`` turns it all off).
        brightness / contrast: photometric jitter (``jitter_batch``; 0 = off).
        erase_prob / erase_min_area / erase_max_area: random erasing (``erase_batch``).
        holdout: fraction of train held out to pick the checkpoint (0 = pick on valid); see the
            module notes.
        amp: bfloat16 autocast; ``channels_last``: NHWC memory format (both speed up CPU
            training on AVX-512 machines); ``threads``: ``torch.set_num_threads`` (0 = leave).
        checkpoint_every: also checkpoint every N optimizer steps inside an epoch (0 = epoch ends).
        init_from: a model folder/name to fine-tune (keeps its pixel normalisation).
        name / info: model name and extra metadata for ``config.json``.
    """

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {
        "scheme": SCHEMES, "optimizer": ("sgd", "adam", "adamw"),
        "scheduler": ("cosine", "constant"), "pad_mode": ("border", "zeros", "reflection")}
    BOUNDS: ClassVar[dict[str, str]] = {
        "min_votes": ">=0", "train_limit": ">=1", "val_limit": ">=1", "momentum": "[0,1]",
        "warmup_epochs": ">=0", "rotate_deg": ">=0", "scale_min": ">0", "scale_max": ">0",
        "shift_px": ">=0", "brightness": ">=0", "contrast": ">=0", "erase_prob": "[0,1]",
        "erase_min_area": "[0,1]", "erase_max_area": "[0,1]", "holdout": "[0,1]"}

    data: str = ""
    out_dir: str = "runs/expression"
    arch: str = "fer_cnn"
    model_args: dict[str, Any] = field(default_factory=dict)
    scheme: str = "crossentropy"
    min_votes: int = 1
    drop_unknown: bool = True
    train_limit: int | None = None
    val_limit: int | None = None
    seed: int = 0
    batch_size: int = 128
    eval_batch_size: int = 512
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    warmup_epochs: float = 0.5
    epochs: int = 12
    max_steps: int = 0
    max_minutes: float = 0.0
    patience: int = 0
    grad_clip: float = 0.0
    augment: bool = True
    flip: bool = True
    rotate_deg: float = 10.0
    scale_min: float = 0.9
    scale_max: float = 1.1
    shift_px: float = 4.0
    pad_mode: str = "border"
    brightness: float = 0.0
    contrast: float = 0.0
    erase_prob: float = 0.0
    erase_min_area: float = 0.02
    erase_max_area: float = 0.2
    holdout: float = 0.0
    amp: bool = False
    channels_last: bool = False
    threads: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    device: str = "cpu"
    init_from: str | None = None
    name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


class ExpressionTrainer:
    """Trains an :class:`~speechface.teachers.expression.ExpressionRecognizer` on FER+.

    ``setup()`` loads data and builds the model (resuming from the newest checkpoint),
    ``train()`` runs the epochs, ``validate()`` scores the selection split. Decoded splits may
    be passed directly (``train_data=``, ``val_data=``) instead of ``config.data``.

    Example:
        >>> cfg = ExpressionTrainConfig(data="ferplus_trainval.npz", out_dir="runs/fer",
        ...                             epochs=1, train_limit=512)              # doctest: +SKIP
        >>> ExpressionTrainer(cfg).train()["best_val_acc"]                     # doctest: +SKIP
    """

    LOG_FIELDS = ["epoch", "step", "train_loss", "val_loss", "val_acc", "val_f1",
                  "val_acc_paper", "lr", "images_per_s", "seconds"]

    def __init__(self, config: ExpressionTrainConfig, train_data: FerPlus | None = None,
                 val_data: FerPlus | None = None) -> None:
        self.cfg = config
        self._train_data, self._val_data = train_data, val_data

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Load the splits, build model and optimizer; resume from the newest checkpoint."""
        cfg = self.cfg
        self.run = run = Run(cfg, self.LOG_FIELDS)
        self.state = run.state
        show = cfg.progress and run.dist.is_main
        if (self._train_data is None or self._val_data is None) and not cfg.data:
            raise DataError("no training data: set 'data' to the FER+ .npz file "
                            "(e.g. --set data=../shared/data/ferplus/ferplus_trainval.npz)")
        train = self._train_data or load_ferplus(cfg.data, "train", cfg.train_limit, progress=show)
        val = self._val_data or load_ferplus(cfg.data, "valid", cfg.val_limit, progress=show)
        self.select_data = val
        if cfg.holdout > 0:  # pick the checkpoint on a seeded part of train; valid stays unseen
            if not 0 < cfg.holdout < 1:
                raise DataError(f"holdout must be a fraction in (0, 1), got {cfg.holdout}")
            perm = np.random.default_rng([cfg.seed, 104729]).permutation(len(train))
            n_hold = max(1, int(round(cfg.holdout * len(train))))
            self.select_data = train.subset(np.sort(perm[:n_hold]))
            train = train.subset(np.sort(perm[n_hold:]))
        self.train_data, self.val_data = train, val
        if cfg.scheme == "majority":
            labels, keep = train.majority(min_votes=cfg.min_votes, drop_unknown=cfg.drop_unknown)
            dist = np.eye(8, dtype=np.float32)[labels]
        else:
            dist, keep = train.distributions(cfg.scheme, min_votes=cfg.min_votes,
                                             drop_unknown=cfg.drop_unknown)
        if not keep.any():
            raise DataError("no training image has a usable emotion label")
        self.train_images = torch.from_numpy(np.ascontiguousarray(train.images[keep]))
        self.train_targets = torch.from_numpy(dist)

        if cfg.init_from:
            model = ExpressionRecognizer.from_pretrained(cfg.init_from)
        else:
            model = ExpressionRecognizer.create(cfg.arch, name=cfg.name, **cfg.model_args)
            px = self.train_images.float().div_(255.0)
            model.set_normalization(float(px.mean()), float(px.std()))
        model.name = cfg.name or model.name
        model.source_size = int(train.images.shape[-1])  # FER+ faces are 48x48
        model.info = {**model.info, "data": "FER+ (FER2013 faces, FERPlus votes)", **cfg.info,
                      "train_images": int(len(self.train_images)), "val_images": len(val),
                      "scheme": cfg.scheme}
        if cfg.holdout > 0:
            model.info["holdout_images"] = len(self.select_data)
        self.model = model.to(run.device)
        if run.device.type == "cuda":  # keep the uint8 images on the GPU; let cuDNN pick kernels
            torch.backends.cudnn.benchmark = True
            self.train_images = self.train_images.to(run.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        params = self.model.network.parameters()
        if cfg.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        run.state.best_epoch = 0
        run.track(self.model, optimizers={"optimizer": self.opt})

    # ------------------------------------------------------------------ schedule and data
    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch on this rank."""
        per_rank = len(self.train_images) // self.run.dist.world_size
        return max(1, math.ceil(per_rank / self.cfg.batch_size))

    def total_steps(self) -> int:
        """Optimizer steps of the whole run (the cosine schedule ends there)."""
        total = self.cfg.epochs * self.steps_per_epoch
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): warm-up, then cosine or constant."""
        cfg = self.cfg
        warm = int(cfg.warmup_epochs * self.steps_per_epoch)
        if step < warm:
            return cfg.lr * (step + 1) / warm
        if cfg.scheduler == "constant":
            return cfg.lr
        t = min(1.0, (step - warm) / max(1, self.total_steps() - warm))
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))

    def make_batch(self, idx: np.ndarray, epoch: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised images ``(B, 1, S, S)`` and targets ``(B, 8)`` of one batch.

        The augmentation draws from a generator seeded by (seed, epoch, batch, rank), so a
        resumed run sees exactly the batches the uninterrupted run would have seen.
        """
        cfg, device = self.cfg, self.run.device
        g = torch.Generator().manual_seed(
            int(np.random.default_rng([cfg.seed, epoch, b, self.run.dist.rank]).integers(2**62)))
        ix = torch.from_numpy(idx)
        x = self.model.normalize(self.train_images[ix.to(self.train_images.device)].to(device))
        size = self.model.input_size
        if cfg.augment and (cfg.brightness > 0 or cfg.contrast > 0):
            x = jitter_batch(x, g, brightness=cfg.brightness, contrast=cfg.contrast,
                             pixel_std=float(self.model.pixel_std))
        if cfg.augment:
            x = augment_batch(x, g, flip=cfg.flip, rotate_deg=cfg.rotate_deg,
                              scale=(cfg.scale_min, cfg.scale_max), shift_px=cfg.shift_px,
                              out_size=size, pad_mode=cfg.pad_mode)
        elif x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        if cfg.augment and cfg.erase_prob > 0:
            x = erase_batch(x, g, prob=cfg.erase_prob, area=(cfg.erase_min_area, cfg.erase_max_area))
        y = self.train_targets[ix]
        if cfg.scheme == "probability":  # PLD: draw a one-hot label from the vote distribution
            y = F.one_hot(torch.multinomial(y, 1, generator=g)[:, 0], 8).float()
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(device)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run training to the end (or early stop); returns the final metrics.

        Returns:
            ``{"epochs", "steps", "best_epoch", "best_val_acc", "val_acc", "val_f1",
            "val_acc_paper", "train_images", "val_images", "seconds", "images_per_s"}`` where the
            ``val_*`` values are those of the best model (written to ``OUT/metrics.json``) on
            the selection split; with ``holdout > 0`` also ``"holdout_images"`` and the FER+
            valid metrics of the chosen model (``"valid_acc"``, ``"valid_f1"``,
            ``"valid_acc_paper"``, ``"valid_n"``, ``"valid_n_paper"``).
        """
        if not hasattr(self, "run"):
            self.setup()
        cfg, run, st = self.cfg, self.run, self.run.state
        overall = MetricWindow()
        while not run.done():
            order = run.shard(np.random.default_rng([cfg.seed, st.epoch]).permutation(
                len(self.train_images)))
            batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            window = MetricWindow()
            self.model.train()
            for b in run.progress(range(st.batch_in_epoch, len(batches)),
                                  desc=f"epoch {st.epoch + 1}/{cfg.epochs}"):
                x, y = self.make_batch(batches[b], st.epoch, b)
                for group in self.opt.param_groups:
                    group["lr"] = self.lr_at(st.step)
                with autocast(run.device, cfg.amp):
                    logits = self.model(x)
                loss = -(y * logits.float().log_softmax(-1)).sum(-1).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                run.sync_grads(self.model.network.parameters(), clip=cfg.grad_clip)
                self.opt.step()
                run.advance()
                window.add(len(y), train_loss=float(loss.detach()))
                overall.add(len(y) * run.dist.world_size)
                if run.out_of_budget():
                    break
            val = self.validate()
            improved = run.stopper.update(-val["accuracy"])
            run.next_epoch()
            if improved and st.step:
                st.best_epoch = st.epoch
                run.save_model(self.model, "best", {k: v for k, v in val.items() if k != "probs"})
            train_loss = run.mean(window.means().get("train_loss", float("nan")))
            run.log(window, train_loss=train_loss, val_loss=val["loss"], val_acc=val["accuracy"],
                    val_f1=val["macro_f1"], val_acc_paper=val["accuracy_paper"],
                    lr=self.opt.param_groups[0]["lr"])
            run.say(f"epoch {st.epoch}: train {train_loss:.4f}  val {val['loss']:.4f}  "
                    f"acc {val['accuracy']:.4f}  f1 {val['macro_f1']:.4f}  acc(paper) "
                    f"{val['accuracy_paper']:.4f}  {window.rate() * run.dist.world_size:,.0f} "
                    "img/s" + ("  *" if improved else ""))
            run.save()
        return self.finish(overall)

    def validate(self) -> dict[str, Any]:
        """Metrics of the current weights on the selection split (see
        :func:`~speechface.evaluation.emotion.evaluate_ferplus`).

        The selection split is FER+ valid, or the held-out part of train when ``holdout > 0``.
        """
        return evaluate_ferplus(self.model, self.select_data, self.cfg.eval_batch_size, self.cfg.amp)

    def finish(self, overall: MetricWindow) -> dict[str, Any]:
        """``metrics.json`` (the best model's selection metrics; FER+ valid with ``holdout``)
        and ``confusion.png``."""
        run, st, holdout = self.run, self.run.state, self.cfg.holdout > 0
        best_file = run.out / "best" / "val_metrics.json"
        best = json.loads(best_file.read_text()) if best_file.is_file() else {}
        result = {"epochs": st.epoch, "steps": st.step,
                  "best_epoch": int(best.get("epoch", st.best_epoch)),
                  "best_val_acc": -run.stopper.best,
                  "val_acc": best.get("accuracy"), "val_f1": best.get("macro_f1"),
                  "val_acc_paper": best.get("accuracy_paper"), "val_n": best.get("n"),
                  "val_n_paper": best.get("n_paper"),
                  "train_images": int(len(self.train_images)), "val_images": len(self.val_data),
                  "seconds": round(run.tick(), 1),
                  "images_per_s": round(overall.rate(), 1) if overall.items else None,
                  "select_on": "holdout" if holdout else "valid",
                  "stopped_by_time": run.stopped_by_time}
        if run.dist.is_main and holdout and (run.out / "best").is_dir():
            # the chosen model, once on FER+ valid (never used for selection)
            m = evaluate_ferplus(ExpressionRecognizer.from_pretrained(run.out / "best").to(run.device),
                                 self.val_data, self.cfg.eval_batch_size, self.cfg.amp)
            run.write_metrics({k: v for k, v in m.items() if k != "probs"}, "best/valid_metrics.json")
            result.update({"holdout_images": len(self.select_data), "valid_acc": m["accuracy"],
                           "valid_f1": m["macro_f1"], "valid_acc_paper": m["accuracy_paper"],
                           "valid_n": m["n"], "valid_n_paper": m["n_paper"]})
        if run.dist.is_main and best.get("confusion") is not None:
            try:
                from ..evaluation.metrics import plot_confusion

                plot_confusion(best["confusion"], EMOTION8.labels, run.out / "confusion.png",
                               title=f"FER+ {'train hold-out' if holdout else 'valid'}, majority "
                                     f"vote (acc {best['accuracy']:.3f})")
            except ImportError:  # matplotlib is optional
                pass
        return run.write_metrics(result)


@train_command("expression", ExpressionTrainConfig, example="epochs=5 lr=0.02",
               help="train the facial-expression recogniser (face image -> 8 FER+ emotions)")
def run_train_expression(cfg: ExpressionTrainConfig, config_path: str | None) -> dict[str, Any]:
    """Handler of ``speechface train expression``."""
    return {**ExpressionTrainer(cfg).train(), "model": f"{cfg.out_dir}/best"}
