"""Training speech -> emotion students (space ``emotion8``): two routes.

**Supervised on RAVDESS** (``route: ravdess``). Every RAVDESS utterance has one acted emotion;
it is mapped into EMOTION8 with :data:`~speechface.data.ravdess.RAVDESS_TO_EMOTION8` (calm ->
neutral). RAVDESS has no contempt: the model keeps its 8 outputs, no target mass is ever put on
contempt (the loss pushes that output down), and the reported metrics are 7-way (argmax over the
seven classes that occur) next to the plain 8-way accuracy. The network is a *frame-level*
estimator (``dcnn`` by default), so the trained model still gives a per-frame track; the loss is
the cross-entropy of the **frame-averaged probabilities** (the mean over valid frames of the
per-frame softmax, exactly the utterance summary :meth:`Prediction.mean` /
:meth:`Prediction.top` computes at inference) against the utterance label, see
:func:`utterance_loss` (``pool: logits`` averages the logits instead). Validation is
actor-disjoint: ``val_actors`` choose the best epoch, ``test_actors`` are only used for the
final report (both fixed in the config).

**Distillation, CME style** (``route: distill``). Talking-face shards (``speechface prepare
av``) get per-frame ``targets_emotion8``: every video frame's face (box from MediaPipe) is cropped
and scored by the FER+ expression teacher (:class:`~speechface.teachers.expression.ExpressionRecognizer`),
see :func:`~speechface.data.emotion_targets.add_emotion_targets`; the student is then trained
with the plain :class:`~speechface.training.EstimatorTrainer` and the space's per-frame KL loss. The student is
also scored on the RAVDESS test actors, like the supervised one.

From the shell::

    speechface prepare emotion prepared/av_mediapipe -o prepared/av_emotion8   # distill targets
    speechface train emotion --config configs/emotion_ravdess.yaml
    speechface train emotion --config configs/emotion_distill.yaml --set epochs=5

From Python::

    from speechface.training.emotion import EmotionTrainConfig, train_emotion
    result = train_emotion(EmotionTrainConfig(route="ravdess", out_dir="runs/emo"))
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.errors import DataError
from ..data.augment import AugmentSettings
from ..data.clips import load_ravdess_clips
from ..evaluation.emotion import evaluate_ravdess
from ..spaces.space import EMOTION8
from .engine import eval_mode, finite_json, train_command
from .estimator import EstimatorTrainConfig, EstimatorTrainer

__all__ = [
    "EmotionTrainConfig",
    "UtteranceEmotionTrainer",
    "utterance_loss",
    "train_emotion",
    "emotion_model_card",
    "ROUTES",
    "RAVDESS_LICENCE",
]

#: The training routes of ``speechface train emotion``.
ROUTES = ("ravdess", "distill")
#: Licence of RAVDESS and of weights trained on it.
RAVDESS_LICENCE = "CC BY-NC-SA 4.0"


@dataclass
class EmotionTrainConfig(EstimatorTrainConfig):
    """Options of :func:`train_emotion`: the :class:`EstimatorTrainConfig` fields plus these.

    Attributes:
        route: ``"ravdess"`` (supervised on utterance labels) or ``"distill"`` (per-frame FER+
            teacher targets in ``data`` shards, see
            :func:`~speechface.data.emotion_targets.add_emotion_targets`).
        ravdess_root: the RAVDESS folder (``Actor_XX/*.flac``); training data of the ravdess
            route and evaluation data of both routes (skipped for distill when absent).
        val_actors: RAVDESS actors that choose the best epoch (ravdess route).
        test_actors: RAVDESS actors held out for the final report (never seen in training or
            model selection). The remaining actors are trained on.
        pool: ``"probs"`` (mean of the per-frame softmax, the default) or ``"logits"`` (softmax
            of the mean logits): how frames are averaged into the utterance prediction.
        frame_weight: weight of an extra per-frame cross-entropy to the utterance label (0 = off).
        freq_mask / time_mask: SpecAugment-style training augmentation: one band of up to
            ``freq_mask`` mel bins and one span of up to ``time_mask`` frames per clip are set to
            the clip's mean (0 = off).
        gain_db: training augmentation: each clip's level is shifted by a random gain in
            ``[-gain_db, gain_db]`` dB (an offset of the log-mel features; 0 = off), so that the
            model does not tell speakers' recording levels for emotions.
        augment_copies: ravdess route: also train on this many transformed copies of every
            training utterance (speed, EQ / telephone band, reverberation, noise, level;
            :func:`~speechface.data.clips.load_ravdess_clips`), so that another microphone,
            room or level is not read as another emotion (0 = off).
        augment_speed: the copies' speed perturbation, a factor drawn in ``1 +- augment_speed``
            (0 = none: speed perturbation also shifts the pitch, which carries emotion).
        augment_gain_db: the copies' level change, drawn in ``+-augment_gain_db`` dB.
        export_to: also copy the final model folder (with its card) here, e.g. into
            ``src/speechface/pretrained/<name>``.
        eval_batch_size: batch size of the held-out evaluation.
    """

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"route": ROUTES, "pool": ("probs", "logits")}
    BOUNDS: ClassVar[dict[str, str]] = {"freq_mask": ">=0", "time_mask": ">=0", "gain_db": ">=0",
                                        "frame_weight": ">=0", "augment_copies": ">=0",
                                        "augment_speed": ">=0", "augment_gain_db": ">=0"}

    arch: str = "dcnn"
    space: str = "emotion8"
    loss: str | None = None
    route: str = "ravdess"
    ravdess_root: str = "../shared/data/ravdess"
    val_actors: list[int] = field(default_factory=lambda: [5, 14])
    test_actors: list[int] = field(default_factory=lambda: [3, 8, 15, 22])
    pool: str = "probs"
    frame_weight: float = 0.0
    freq_mask: int = 0
    time_mask: int = 0
    gain_db: float = 0.0
    augment_copies: int = 0
    augment_speed: float = 0.0
    augment_gain_db: float = 10.0
    export_to: str | None = None
    eval_batch_size: int = 16


# ------------------------------------------------------------------------------------- loss
def utterance_loss(raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
                   pool: str = "probs", frame_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the frame-averaged prediction against an utterance target.

    Args:
        raw: ``(B, T, 8)`` (or ``(T, 8)``) raw per-frame logits.
        target: ``(B, T, 8)`` per-frame target distributions (for RAVDESS the same one-hot row
            on every frame); averaged over valid frames into the utterance target.
        mask: ``(B, T)`` valid frames (padding = False); None = all valid.
        pool: ``"probs"``: ``p = mean_t softmax(raw_t)``, loss ``-sum y log p`` (matches
            :meth:`Prediction.mean`); ``"logits"``: ``p = softmax(mean_t raw_t)``.
        frame_weight: add ``frame_weight *`` the per-frame cross-entropy (KL to the target).

    Returns:
        Scalar: the mean over utterances with at least one valid frame.

    Example:
        >>> raw = torch.zeros(2, 5, 8); y = torch.zeros(2, 5, 8); y[..., 1] = 1
        >>> round(float(utterance_loss(raw, y)), 4)       # uniform prediction: log 8
        2.0794
    """
    if raw.ndim == 2:
        raw, target = raw[None], target[None]
        mask = None if mask is None else mask[None]
    if mask is None:
        mask = torch.ones(raw.shape[:2], dtype=torch.bool, device=raw.device)
    w = mask.to(raw.dtype)[..., None]
    n = w.sum(-2).clamp_min(1.0)
    tbar = (target * w).sum(-2) / n
    if pool == "probs":
        pbar = (raw.softmax(-1) * w).sum(-2) / n
        logp = pbar.clamp_min(1e-8).log()
    elif pool == "logits":
        logp = ((raw * w).sum(-2) / n).log_softmax(-1)
    else:
        raise ValueError(f"pool must be 'probs' or 'logits', got {pool!r}")
    per = -(tbar * logp).sum(-1)
    valid = mask.any(-1).to(per.dtype)
    loss = (per * valid).sum() / valid.sum().clamp_min(1.0)
    if frame_weight:
        loss = loss + frame_weight * EMOTION8.loss_fn(raw, target, mask, kind="kl")
    return loss


# ------------------------------------------------------------------------------------- trainer
class UtteranceEmotionTrainer(EstimatorTrainer):
    """:class:`EstimatorTrainer` with an utterance-level loss on the frame-averaged prediction.

    Only the loss, the validation metrics and an optional feature augmentation change; the loop,
    checkpoints, resume, early stopping and ``best/`` saving are the base trainer's. Clips come
    from :func:`~speechface.data.clips.load_ravdess_clips` (or are passed in). The config is an
    :class:`EmotionTrainConfig`.

    Example:
        >>> trainer = UtteranceEmotionTrainer(cfg, clips=train, val_clips=val)   # doctest: +SKIP
        >>> trainer.train()["best_val_loss"]                                     # doctest: +SKIP
    """

    cfg: EmotionTrainConfig

    def loss(self, raw: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """:func:`utterance_loss` of a batch."""
        return utterance_loss(raw.float(), y, m, pool=self.cfg.pool,
                              frame_weight=self.cfg.frame_weight)

    def make_batch(self, items: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """The estimator's batch with level, frequency and time augmentation (seeded by step)."""
        x, y, m, lengths = super().make_batch(items)
        cfg = self.cfg
        if cfg.freq_mask or cfg.time_mask or cfg.gain_db:
            x = x.clone()
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.state.step)
            for b in range(x.shape[0]):
                n = int(lengths[b])
                if cfg.gain_db:  # log-mel of power: +G dB = + G / 10 * ln 10
                    db = (torch.rand((), generator=g) * 2 - 1) * cfg.gain_db
                    x[b, :n] += float(db) * 0.2302585
                fill = x[b, :n].mean()
                if cfg.freq_mask:
                    w = int(torch.randint(0, cfg.freq_mask + 1, (1,), generator=g))
                    f0 = int(torch.randint(0, max(x.shape[2] - w, 1), (1,), generator=g))
                    x[b, :n, f0:f0 + w] = fill
                if cfg.time_mask and n > cfg.time_mask:
                    w = int(torch.randint(0, cfg.time_mask + 1, (1,), generator=g))
                    t0 = int(torch.randint(0, n - w + 1, (1,), generator=g))
                    x[b, t0:t0 + w] = fill
        return x, y, m, lengths

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Utterance loss, accuracy (7-way) and MAE of the averaged distribution on val clips."""
        losses, errs, hits = [], [], []
        with eval_mode(self.model):
            for c in self.val_clips:
                raw = self.model(self.normalize(c.features[None].to(self.run.device)))[0].float()
                y, m = c.targets.to(raw.device), c.mask.to(raw.device)
                if not bool(m.any()):
                    continue
                losses.append(float(self.loss(raw[None], y[None], m[None])))
                p, t = raw.softmax(-1)[m].mean(0), y[m].mean(0)
                errs.append(float((p - t).abs().mean()))
                hits.append(float(int(p[:7].argmax()) == int(t.argmax())))
        return {"loss": float(np.mean(losses)) if losses else float("nan"),
                "mae": float(np.mean(errs)) if errs else float("nan"),
                "accuracy": float(np.mean(hits)) if hits else float("nan")}


# ------------------------------------------------------------------------------------- driver
def _fmt_metrics(m: dict[str, Any]) -> str:
    return (f"accuracy 7-way {m['accuracy_7']:.3f}, macro-F1 7-way {m['macro_f1_7']:.3f}, "
            f"accuracy 8-way {m['accuracy_8']:.3f} on {m['n_clips']} clips of actors "
            f"{', '.join(str(a) for a in m['actors'])} (chance: uniform {m['chance_uniform_7']:.3f}, "
            f"majority {m['chance_majority']:.3f})")


def _feature_words(model: Any) -> str:
    """The model's features in words, for its card."""
    fx = model.features
    name = getattr(fx, "registry_name", "logmel")
    if name == "whisper":
        layer = getattr(fx, "layer", None)
        depth = "all encoder blocks" if layer is None else f"{layer} encoder blocks"
        return (f"frozen Whisper {getattr(fx, 'model', 'tiny.en')} encoder states "
                f"({fx.n_features} per frame, {depth})")
    if name == "mfcc":
        return f"{fx.n_features} MFCC features"
    return f"{fx.n_features}-band log-mel features"


def emotion_model_card(model: Any, cfg: EmotionTrainConfig, test: dict[str, Any] | None,
                       result: dict[str, Any], config_path: str | None = None) -> str:
    """The README.md model card of a trained emotion student (data, licence, route, metrics).

    Example:
        >>> card = emotion_model_card(model, cfg, metrics, result)   # doctest: +SKIP
    """
    cmd = f"speechface train emotion --config {config_path or 'configs/emotion_' + cfg.route + '.yaml'}"
    if cfg.route == "ravdess":
        data = (f"RAVDESS speech (Livingstone & Russo 2018), {result.get('train_clips')} clips of "
                f"actors {', '.join(a[-2:] for a in result.get('train_groups', []))}; model "
                f"selection on actors {', '.join(str(a) for a in cfg.val_actors)}; actors "
                f"{', '.join(str(a) for a in cfg.test_actors)} held out for the report.")
        licence = (f"{RAVDESS_LICENCE} (non-commercial, share-alike), inherited from RAVDESS")
        route = ("supervised: utterance labels mapped into EMOTION8 (calm -> neutral; RAVDESS "
                 "has no contempt, so no target mass on it), cross-entropy of the mean of the "
                 f"per-frame softmax over the utterance (pool={cfg.pool})")
        aug = [f"level +-{cfg.gain_db:g} dB" if cfg.gain_db else "",
               f"frequency mask <= {cfg.freq_mask} bins" if cfg.freq_mask else "",
               f"time mask <= {cfg.time_mask} frames" if cfg.time_mask else "",
               f"{cfg.augment_copies} transformed copies of every training utterance (speed "
               f"+-{cfg.augment_speed:g}, EQ / telephone band, reverberation, noise, level "
               f"+-{cfg.augment_gain_db:g} dB)"
               if cfg.augment_copies else ""]
        aug = [a for a in aug if a]
        route += (f"; augmentation: {', '.join(aug)}" if aug else "") + "."
        if cfg.init_from:
            route += f" Initialised from `{cfg.init_from}`."
        lic_tag = "cc-by-nc-sa-4.0"
    else:
        data = (f"talking-face shards {cfg.data} ({result.get('train_clips')} training clips), "
                "per-frame targets from the FER+ expression teacher on MediaPipe face crops.")
        licence = ("derived from the talking-face clips (GRID: CC BY 4.0; other clips research "
                   "use) and the FER+ teacher (FER2013 pixels: research use); research use only")
        route = "distillation (CME style): per-frame KL divergence to the teacher's distribution."
        lic_tag = "other"
    lines = [
        "---", "library_name: speechface", f"license: {lic_tag}",
        "tags: [speech, emotion-recognition, emotion8]", "---", "",
        f"# {model.name}", "",
        f"Speech -> 8-way FER+ emotion distribution (neutral, happiness, surprise, sadness, "
        f"anger, disgust, fear, contempt) per 25 fps frame. `{model.network.arch}` estimator "
        f"({model.network.num_parameters():,} parameters) on {_feature_words(model)}.", "",
        "```python", "from speechface import EmotionEstimator",
        f'est = EmotionEstimator.from_pretrained("{model.name}")',
        'r = est.predict("speech.wav")   # r.values: (frames, 8), rows sum to 1',
        "r.top(), r.mean()                # utterance summary", "```", "",
        f"- **Route**: {route}",
        f"- **Data**: {data}",
        f"- **Licence of the weights**: {licence}.",
    ]
    if test is not None:
        lines += [
            f"- **Held-out actors** ({', '.join(str(a) for a in test['actors'])}, never used for "
            f"training or selection): {_fmt_metrics(test)}. 7-way = argmax over the seven "
            "classes RAVDESS has; the utterance prediction is the mean of the frame "
            "probabilities.",
        ]
    lines += [
        f"- **Training**: {result.get('epochs')} epochs, {result.get('steps')} steps, "
        f"{result.get('seconds', 0):.0f} s on CPU; best epoch by validation loss "
        f"{result.get('best_val_loss') or float('nan'):.4f}.",
        f"- **Retrain**: `{cmd}`",
        "",
        "Limitations: acted emotions of professional North-American actors reading two "
        "neutral sentences; "
        "per-frame values are a by-product of an utterance-level objective (ravdess route) and "
        "should be smoothed or averaged; emotion from speech alone is ambiguous.",
        "",
    ]
    return "\n".join(lines)


def train_emotion(cfg: EmotionTrainConfig, config_path: str | None = None) -> dict[str, Any]:
    """Run one emotion route end to end: train, evaluate on the test actors, write the card.

    Writes into ``cfg.out_dir``: the trainer's files (``best/``, ``log.csv``, checkpoints),
    ``test_metrics.json``, ``confusion_test.png``; ``best/README.md`` becomes the full model
    card and ``best/config.json`` records the metrics under ``info``. With ``export_to`` the
    final folder is copied there too.

    Returns:
        The trainer's result plus ``seconds`` and ``test`` (the :func:`~speechface.evaluation.emotion.evaluate_ravdess`
        metrics, or None when RAVDESS is absent on the distill route).

    Example:
        >>> train_emotion(EmotionTrainConfig(out_dir="runs/emo", epochs=1))   # doctest: +SKIP
    """
    from ..core._io import write_json
    from ..speech.model import EmotionEstimator

    if cfg.route not in ROUTES:
        raise DataError(f"route must be one of {', '.join(ROUTES)}, got {cfg.route!r}")
    if cfg.space != EMOTION8.name:
        raise DataError(f"emotion students predict emotion8, config says space={cfg.space!r}")
    overlap = set(cfg.val_actors) & set(cfg.test_actors)
    if overlap:
        raise DataError(f"actors {sorted(overlap)} are both validation and test actors")
    out = Path(cfg.out_dir)
    root = Path(cfg.ravdess_root)
    t0 = time.perf_counter()
    if cfg.route == "ravdess":
        from ..data.ravdess import RavdessDataset

        feat_name = cfg.feature or "logmel"
        all_actors = RavdessDataset(root, with_audio=False, vocal_channel="speech").actors
        held = set(cfg.val_actors) | set(cfg.test_actors)
        missing = sorted(held - set(all_actors))
        if missing:
            raise DataError(f"{root}: no clips of actors {missing}")
        train_actors = [a for a in all_actors if a not in held]
        train = load_ravdess_clips(root, train_actors, feature=feat_name,
                                   feature_args=cfg.feature_args,
                                   augment_copies=cfg.augment_copies, seed=cfg.seed,
                                   augment_settings=AugmentSettings(
                                       speed=(1.0 - cfg.augment_speed, 1.0 + cfg.augment_speed),
                                       gain_db=cfg.augment_gain_db))
        val = load_ravdess_clips(root, list(cfg.val_actors), feature=feat_name,
                                 feature_args=cfg.feature_args)
        cfg.info = {**cfg.info, "route": "ravdess", "data": "RAVDESS speech (16 kHz)",
                    "licence": RAVDESS_LICENCE, "test_actors": list(cfg.test_actors)}
        trainer: EstimatorTrainer = UtteranceEmotionTrainer(cfg, clips=train, val_clips=val)
    else:
        if not cfg.data:
            raise DataError("the distill route needs 'data': shards with targets_emotion8 "
                            "(speechface prepare emotion SHARDS -o OUT)")
        cfg.info = {**cfg.info, "route": "distill",
                    "teacher": "FER+ expression recogniser on MediaPipe face crops"}
        trainer = EstimatorTrainer(cfg)
    result = trainer.train()
    if not trainer.run.dist.is_main:  # rank 0 evaluates and writes
        return result
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["train_groups"] = trainer.model.info.get("train_groups", [])
    best = out / "best"
    model = EmotionEstimator.from_pretrained(best)
    model.pretrained = True
    test = None
    if cfg.test_actors and (root.is_dir() or cfg.route == "ravdess"):
        test = evaluate_ravdess(model, root, list(cfg.test_actors),
                                batch_size=cfg.eval_batch_size,
                                confusion_png=out / "confusion_test.png",
                                title=f"{model.name}: held-out RAVDESS actors (7-way)")
        write_json(out / "test_metrics.json", test)
    model.info = {**model.info, "train_seconds": result["seconds"],
                  "test_metrics": None if test is None else
                  {k: test[k] for k in ("actors", "n_clips", "accuracy_7", "macro_f1_7",
                                        "accuracy_8", "chance_uniform_7", "chance_majority")}}
    card = emotion_model_card(model, cfg, test, result, config_path)
    model.save_pretrained(best, card=card)
    if cfg.export_to:
        dest = Path(cfg.export_to)
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "model.safetensors", "README.md"):
            shutil.copyfile(best / f, dest / f)
    result["test"] = test
    write_json(out / "result.json", finite_json(result))
    return result


# ------------------------------------------------------------------------------------- command
@train_command("emotion", EmotionTrainConfig, example="route=distill epochs=5",
               help="train a speech -> emotion8 student (route=ravdess: supervised on RAVDESS "
                    "utterance labels; route=distill: per-frame KL to FER+ teacher targets)")
def run_train_emotion(cfg: EmotionTrainConfig, config_path: str | None) -> dict[str, Any]:
    """Handler of ``speechface train emotion``."""
    result = train_emotion(cfg, config_path=config_path)
    if result.get("test"):
        print(f"held-out: {_fmt_metrics(result['test'])}", file=sys.stderr)
    return {**{k: v for k, v in result.items() if k not in ("test", "train_groups")},
            "model": f"{cfg.out_dir}/best"}
