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
and scored by the FER+ expression teacher (:class:`~speechface.expression.ExpressionRecognizer`),
see :func:`add_emotion_targets`; the student is then trained with the plain
:class:`~speechface.training.EstimatorTrainer` and the space's per-frame KL loss. The student is
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

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, SpeechfaceError
from ..spaces import EMOTION8
from .cli import add_config_arguments, config_from_args, register_component
from .estimator import EstimatorTrainConfig, EstimatorTrainer, TrainClip

__all__ = [
    "EmotionTrainConfig",
    "UtteranceEmotionTrainer",
    "utterance_loss",
    "load_ravdess_clips",
    "evaluate_ravdess",
    "emotion_targets_for_video",
    "add_emotion_targets",
    "train_emotion",
    "emotion_model_card",
    "ROUTES",
    "RAVDESS_LICENCE",
]

log = logging.getLogger(__name__)

#: The training routes of ``speechface train emotion``.
ROUTES = ("ravdess", "distill")
#: Licence of RAVDESS and of weights trained on it.
RAVDESS_LICENCE = "CC BY-NC-SA 4.0"
#: The seven EMOTION8 classes that occur in RAVDESS (all but contempt), by index.
SEVEN = tuple(range(7))
FPS = 25


@dataclass
class EmotionTrainConfig(EstimatorTrainConfig):
    """Options of :func:`train_emotion`: the :class:`EstimatorTrainConfig` fields plus these.

    Attributes:
        route: ``"ravdess"`` (supervised on utterance labels) or ``"distill"`` (per-frame FER+
            teacher targets in ``data`` shards, see :func:`add_emotion_targets`).
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
        export_to: also copy the final model folder (with its card) here, e.g. into
            ``src/speechface/pretrained/<name>``.
        eval_batch_size: batch size of the held-out evaluation.
    """

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


# ------------------------------------------------------------------------------------- data
def load_ravdess_clips(root: str | Path, actors: list[int] | None = None, *,
                       feature: str = "logmel", feature_args: dict[str, Any] | None = None,
                       keep_audio: bool = False) -> list[TrainClip]:
    """RAVDESS utterances as :class:`TrainClip` s with one-hot EMOTION8 targets on every frame.

    Args:
        root: the RAVDESS folder (``Actor_XX/*.flac``).
        actors: actor numbers to load (default all).
        feature, feature_args: the feature extractor (must match the model's).
        keep_audio: also keep the 16 kHz waveform.

    Returns:
        Clips named by the RAVDESS file stem, grouped by actor (``"Actor_05"``); every frame is
        valid (the label is the utterance's, silence included, as at inference).

    Example:
        >>> clips = load_ravdess_clips("../shared/data/ravdess", actors=[1])   # doctest: +SKIP
        >>> clips[0].targets.shape, clips[0].group                              # doctest: +SKIP
        (torch.Size([83, 8]), 'Actor_01')
    """
    from ..audio import load_audio
    from ..data.ravdess import RavdessDataset
    from ..registry import FEATURES

    ds = RavdessDataset(root, actors=actors, with_audio=False, vocal_channel="speech")
    fx = FEATURES.create(feature, **(feature_args or {}))
    clips: list[TrainClip] = []
    for item in ds.items:
        wave = load_audio(item.path, target_rate=int(getattr(fx, "sample_rate", 16000)))
        with torch.no_grad():
            feats = fx(wave).T.contiguous()
        t = feats.shape[0]
        if t < 1:
            raise DataError(f"{item.path}: too short for one feature frame")
        y = torch.zeros(t, EMOTION8.dim)
        y[:, item.emotion8] = 1.0
        clips.append(TrainClip(name=item.info.name, group=f"Actor_{item.actor:02d}",
                               features=feats, targets=y, mask=torch.ones(t, dtype=torch.bool),
                               audio=wave if keep_audio else None))
    return clips


# ------------------------------------------------------------------------------------- trainer
class UtteranceEmotionTrainer(EstimatorTrainer):
    """:class:`EstimatorTrainer` with an utterance-level loss on the frame-averaged prediction.

    Only the loss, the validation metrics and an optional feature augmentation change; the loop,
    checkpoints, resume, early stopping and ``best/`` saving are the base trainer's. Clips come
    from :func:`load_ravdess_clips` (or are passed in). The config is an
    :class:`EmotionTrainConfig`.

    Example:
        >>> trainer = UtteranceEmotionTrainer(cfg, clips=train, val_clips=val)   # doctest: +SKIP
        >>> trainer.train()["best_val_loss"]                                     # doctest: +SKIP
    """

    cfg: EmotionTrainConfig

    def _loss(self, raw: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return utterance_loss(raw.float(), y, m, pool=self.cfg.pool,
                              frame_weight=self.cfg.frame_weight)

    def _batch(self, items: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        x, y, m, lengths = super()._batch(items)
        cfg = self.cfg
        if cfg.freq_mask or cfg.time_mask or cfg.gain_db:
            x = x.clone()
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
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
        self.net.eval()
        losses, errs, hits = [], [], []
        for c in self.val_clips:
            x = self._normalize(c.features[None].to(self.device))
            raw = self.model(x)[0].float()
            y, m = c.targets.to(self.device), c.mask.to(self.device)
            if not bool(m.any()):
                continue
            losses.append(float(self._loss(raw[None], y[None], m[None])))
            p = raw.softmax(-1)[m].mean(0)
            t = y[m].mean(0)
            errs.append(float((p - t).abs().mean()))
            hits.append(float(int(p[:7].argmax()) == int(t.argmax())))
        return {"loss": float(np.mean(losses)) if losses else float("nan"),
                "mae": float(np.mean(errs)) if errs else float("nan"),
                "accuracy": float(np.mean(hits)) if hits else float("nan")}


# ------------------------------------------------------------------------------------- evaluation
def evaluate_ravdess(model: Any, root: str | Path, actors: list[int], *, batch_size: int = 16,
                     confusion_png: str | Path | None = None, title: str | None = None
                     ) -> dict[str, Any]:
    """Utterance-level emotion metrics of a speech model on RAVDESS actors.

    Each clip goes through ``model.predict_batch``; its utterance prediction is the mean of the
    per-frame probabilities (:meth:`Prediction.mean`). Metrics:

    - ``accuracy_8``: argmax over all 8 outputs (a contempt prediction is simply wrong);
    - ``accuracy_7`` / ``macro_f1_7``: argmax over the 7 classes RAVDESS has (calm counted as
      neutral), macro-F1 over those 7;
    - ``chance_uniform_7`` (1/7) and ``chance_majority`` (share of the most frequent class);
    - ``confusion_7`` (rows = true, columns = predicted) and per-class recall.

    Args:
        model: an :class:`~speechface.EmotionEstimator` (or any ``SpeechEstimator`` of emotion8).
        root: the RAVDESS folder.
        actors: the held-out actors to score.
        confusion_png: also save the 7-way confusion matrix picture here.

    Example:
        >>> evaluate_ravdess(est, "../shared/data/ravdess", [3, 8, 15, 22])["accuracy_7"]  # doctest: +SKIP
        0.47
    """
    from ..data.ravdess import RavdessDataset
    from ..metrics import accuracy, confusion_matrix, macro_f1, plot_confusion

    if model.space.name != EMOTION8.name:
        raise DataError(f"model predicts {model.space.name}, not emotion8")
    ds = RavdessDataset(root, actors=actors, with_audio=False, vocal_channel="speech")
    preds = model.predict_batch([str(p) for p in ds.paths], batch_size=batch_size)
    probs = np.stack([p.values.mean(0) for p in preds])
    true = ds.emotion8_labels()
    pred8 = probs.argmax(1)
    pred7 = probs[:, list(SEVEN)].argmax(1)
    cm = confusion_matrix(pred7, true, 7)
    counts = np.bincount(true, minlength=7)
    labels7 = list(EMOTION8.labels[:7])
    out = {
        "actors": sorted(int(a) for a in actors),
        "n_clips": int(len(true)),
        "accuracy_8": accuracy(pred8, true),
        "accuracy_7": accuracy(pred7, true),
        "macro_f1_7": macro_f1(pred7, true, 7),
        "macro_f1_8": macro_f1(pred8, true, 8),
        "chance_uniform_7": 1.0 / 7.0,
        "chance_majority": float(counts.max() / counts.sum()),
        "predicted_contempt": int((pred8 == 7).sum()),
        "labels_7": labels7,
        "confusion_7": cm.tolist(),
        "recall_7": {lab: float(cm[i, i] / max(cm[i].sum(), 1)) for i, lab in enumerate(labels7)},
    }
    if confusion_png is not None:
        plot_confusion(cm, labels7, confusion_png, title=title)
        out["confusion_png"] = str(confusion_png)
    return out


# ------------------------------------------------------------------------------------- distillation targets
def _crop_grey(image: np.ndarray, box: np.ndarray, margin: float, size: int) -> np.ndarray:
    from PIL import Image

    from ..face import crop_face

    crop = crop_face(image, box, margin=margin, size=None).image
    pil = Image.fromarray(crop).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def _track_boxes(frames: list[Any], teacher: Any, every: int) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe boxes on every ``every``-th frame, linearly interpolated for the others."""
    n = len(frames)
    picks = sorted(set(range(0, n, every)) | {n - 1})
    teacher.reset()
    seen_idx, seen_box = [], []
    for i in picks:
        obs = teacher.observe(frames[i].image, int(round(frames[i].time * 1000)))
        if obs.found:
            seen_idx.append(i)
            seen_box.append(np.asarray(obs.box, np.float64))
    teacher.reset()
    found = np.zeros(n, dtype=bool)
    rects = np.zeros((n, 4), np.float32)
    if not seen_idx:
        return found, rects
    idx = np.asarray(seen_idx)
    sb = np.stack(seen_box)
    allf = np.arange(n)
    for c in range(4):
        rects[:, c] = np.interp(allf, idx, sb[:, c])
    nearest = np.abs(allf[:, None] - idx[None, :]).min(1)
    found = nearest <= every  # a frame next to a missed detection counts as no face
    return found, rects


def emotion_targets_for_video(video: str | Path, recognizer: Any, teacher: Any, n_frames: int, *,
                              margin: float = 0.1, max_seconds: float | None = None,
                              boxes: dict[str, np.ndarray] | None = None, box_every: int = 1,
                              batch_size: int = 256
                              ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per-frame FER+ teacher distributions of a talking-face video on the 25 fps grid.

    The decoded video frames are run through the MediaPipe ``teacher`` (its box = the extent of
    the face mesh; see ``box_every``); every frame's face is cut as a square ``(1 + 2 * margin)`` times the box's longer
    side (:func:`~speechface.face.crop_face`), turned grey, resized to the recogniser's input and
    scored. The distributions are then resampled from the video's timestamps onto frames
    ``n / 25`` s with :func:`~speechface.data.openface.to_frame_grid` (so any frame rate lines up
    with the audio features) and renormalised.

    Args:
        video: the source video.
        recognizer: an :class:`~speechface.expression.ExpressionRecognizer`.
        teacher: a :class:`~speechface.teachers.MediaPipeTeacher` (``running_mode="video"``;
            reset here for each video). May be None when ``boxes`` are given.
        n_frames: frames of the audio grid (the shard's ``n_frames``).
        margin: crop margin on each side, as a fraction of the box's longer side.
        max_seconds: only the first seconds (tests).
        boxes: the face track of an earlier run (``info["track"]`` of this function:
            ``times``, ``found``, ``boxes`` per video frame); MediaPipe is then skipped.
        box_every: run MediaPipe on every ``box_every``-th frame only (and the last one) and
            interpolate the boxes linearly in between (faces move little in 1/5 s; the teacher
            still scores every frame). 1 = every frame.

    Returns:
        ``(probs (n_frames, 8) float32, mask (n_frames,) bool, info)``; masked frames hold 0.
        ``info["track"]`` holds the face track (reusable as ``boxes``).

    Example:
        >>> probs, mask, info = emotion_targets_for_video("clip.mp4", fer, mp, 75)  # doctest: +SKIP
    """
    from ..data.openface import to_frame_grid
    from ..video import iter_video_frames

    size = int(recognizer.input_size)
    limit = None if max_seconds is None else max_seconds + 0.2
    frames = []
    for i, frame in enumerate(iter_video_frames(video)):
        if (limit is not None and frame.time > limit) or \
                (boxes is not None and i >= len(boxes["found"])):
            break
        frames.append(frame)
    if not frames:
        raise DataError(f"{video}: no video frames decoded")
    times = np.array([f.time for f in frames], dtype=np.float64)
    if boxes is not None:
        found = np.array(boxes["found"][:len(frames)], dtype=bool)
        rects = np.asarray(boxes["boxes"][:len(frames)], dtype=np.float32)
    else:
        if teacher is None:
            raise ValueError("give a MediaPipe teacher or the boxes of an earlier run")
        found, rects = _track_boxes(frames, teacher, max(1, int(box_every)))
    crops = np.zeros((len(frames), size, size), np.uint8)
    for i, frame in enumerate(frames):
        box = rects[i]
        if found[i] and float(box[2] - box[0]) > 4 and float(box[3] - box[1]) > 4:
            try:
                crops[i] = _crop_grey(frame.image, box, margin, size)
            except (ValueError, SpeechfaceError):
                found[i] = False
        else:
            found[i] = False
    del frames
    fnd = found
    probs = np.zeros((len(times), EMOTION8.dim), np.float32)
    if fnd.any():
        idx = np.flatnonzero(fnd)
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            probs[chunk] = np.asarray(recognizer.predict(np.stack([crops[i] for i in chunk])),
                                      dtype=np.float32)
    grid, mask = to_frame_grid(np.asarray(times), probs, fnd, n_frames, FPS)
    total = grid.sum(1, keepdims=True)
    grid = np.where(total > 0, grid / np.maximum(total, 1e-8), 0.0).astype(np.float32)
    mask = mask & (total[:, 0] > 0)
    info = {"video_frames": len(times), "face_found_fraction": round(float(fnd.mean()), 4),
            "emotion8_mean": [round(float(v), 4) for v in (grid[mask].mean(0) if mask.any()
                                                            else np.zeros(8))],
            "track": {"times": times, "found": fnd, "boxes": rects}}
    return grid, mask, info


def _read_track(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in ("times", "found", "boxes")}
    except (OSError, ValueError, KeyError):
        return None


def add_emotion_targets(shards: str | Path, recognizer: Any = None, *,
                        output: str | Path | None = None, landmarker: str | Path | None = None,
                        margin: float = 0.1, overwrite: bool = False, progress: bool = True,
                        names: list[str] | None = None, strict: bool = False,
                        box_cache: str | Path | None = None, box_every: int = 1
                        ) -> list[dict[str, Any]]:
    """Add per-frame ``targets_emotion8`` (FER+ teacher) to prepared talking-face shards.

    For every clip, the source video named in its record (``source``) is read again, and
    :func:`emotion_targets_for_video` scores each frame's face. The clip is written back
    (atomically, all arrays kept) with ``targets_emotion8 (frames, 8)`` added and ``mask`` narrowed
    to frames where the teacher saw a face (the same MediaPipe detection as the AU targets, so
    it rarely changes). Clips that already have ``targets_emotion8`` in ``output`` are skipped
    (resumable) unless ``overwrite``. The manifest of ``output`` is rebuilt at the end.

    Args:
        shards: folder of clips from ``speechface prepare av``.
        recognizer: an :class:`~speechface.expression.ExpressionRecognizer`, or a model
            name/folder for ``ExpressionRecognizer.from_pretrained`` (None = the packaged one).
        output: where to write (default: in place, into ``shards``).
        landmarker: the ``face_landmarker.task`` bundle (default: found automatically).
        margin: face crop margin (see :func:`emotion_targets_for_video`).
        names: only these clips (default all).
        strict: raise on the first failing clip instead of logging and skipping it.
        box_cache: a folder keeping each clip's MediaPipe face track (``<name>.npz``: times,
            found, boxes per video frame); a rerun with another teacher then skips MediaPipe,
            the slow part.
        box_every: MediaPipe on every n-th frame, boxes interpolated in between (see
            :func:`emotion_targets_for_video`).

    Returns:
        The records of the clips now holding ``targets_emotion8``.

    Example:
        >>> add_emotion_targets("prepared/av_mediapipe", output="prepared/av_emotion8")  # doctest: +SKIP
    """
    from .._io import atomic_write
    from ..data.shards import list_clips, read_clip, rebuild_manifest, write_clip
    from ..expression import ExpressionRecognizer
    from ..teachers.mediapipe import MediaPipeTeacher

    src = Path(shards)
    out = Path(output) if output is not None else src
    out.mkdir(parents=True, exist_ok=True)
    if recognizer is None or isinstance(recognizer, (str, Path)):
        recognizer = ExpressionRecognizer.from_pretrained(recognizer)
    records = list_clips(src)
    if names is not None:
        wanted = set(names)
        records = [r for r in records if r["name"] in wanted]
    if not records:
        raise DataError(f"{src}: no clips to label")
    teacher = MediaPipeTeacher(landmarker, running_mode="video")
    cache = Path(box_cache) if box_cache is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    done: list[dict[str, Any]] = []
    bar: Any = records
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(records, desc="emotion8 targets", unit="clip")
    t0 = time.time()
    try:
        for rec in bar:
            name = rec["name"]
            target = out / f"{name}.npz"
            if not overwrite and target.is_file():
                try:
                    _, rec_o = read_clip(target, keys=["targets_emotion8"])
                    done.append(rec_o)
                    continue
                except DataError:
                    pass
            try:
                arrays, meta = read_clip(src, name)
                source = Path(meta.get("source") or rec.get("source") or "")
                if not source.is_file():
                    raise DataError(f"clip {name}: source video {source} not found")
                n = int(arrays["mask"].shape[0])
                track = _read_track(cache / f"{name}.npz") if cache is not None else None
                probs, mask, info = emotion_targets_for_video(
                    source, recognizer, teacher, n, margin=margin, boxes=track,
                    box_every=box_every,
                    max_seconds=float(meta["seconds"]) if meta.get("seconds") else None)
                if cache is not None and track is None:
                    with atomic_write(cache / f"{name}.npz", "wb") as f:
                        np.savez(f, **info["track"])
            except SpeechfaceError as e:
                if strict:
                    raise
                log.warning("skipping %s: %s", name, e)
                continue
            arrays["targets_emotion8"] = probs
            arrays["mask"] = arrays["mask"].astype(bool) & mask
            targets = list(meta.get("targets") or [])
            meta.update(
                targets=targets + (["emotion8"] if "emotion8" not in targets else []),
                expression_teacher=getattr(recognizer, "name", "expression"),
                expression_crop={"box": "mediapipe mesh extent", "margin": margin,
                                 "box_every": box_every,
                                 "size": int(recognizer.input_size), "colour": "grey"},
                emotion8_found_fraction=info["face_found_fraction"],
                valid_fraction=round(float(arrays["mask"].mean()), 4),
                written_at=time.time())
            done.append(write_clip(out, name, arrays, meta))
    finally:
        teacher.close()
    rebuild_manifest(out)
    log.info("emotion8 targets: %d clips in %s (%.0f s)", len(done), out, time.time() - t0)
    return done


# ------------------------------------------------------------------------------------- driver
def _fmt_metrics(m: dict[str, Any]) -> str:
    return (f"accuracy 7-way {m['accuracy_7']:.3f}, macro-F1 7-way {m['macro_f1_7']:.3f}, "
            f"accuracy 8-way {m['accuracy_8']:.3f} on {m['n_clips']} clips of actors "
            f"{', '.join(str(a) for a in m['actors'])} (chance: uniform {m['chance_uniform_7']:.3f}, "
            f"majority {m['chance_majority']:.3f})")


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
               f"time mask <= {cfg.time_mask} frames" if cfg.time_mask else ""]
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
        f"({model.network.num_parameters():,} parameters) on 80-band log-mel features.", "",
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
        f"{result.get('best_val_loss', float('nan')):.4f}.",
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
        The trainer's result plus ``seconds`` and ``test`` (the :func:`evaluate_ravdess`
        metrics, or None when RAVDESS is absent on the distill route).

    Example:
        >>> train_emotion(EmotionTrainConfig(out_dir="runs/emo", epochs=1))   # doctest: +SKIP
    """
    from .._io import write_json
    from ..speech import EmotionEstimator

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
                                   feature_args=cfg.feature_args)
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
    write_json(out / "result.json", result)
    return result


# ------------------------------------------------------------------------------------- CLI
@register_component
def add_train_parser(tsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``speechface train emotion --config cfg.yaml --set key=value`` (route: ravdess | distill).

    Example (shell)::

        speechface train emotion --config configs/emotion_ravdess.yaml --set epochs=3
    """
    p = tsub.add_parser("emotion", help="train a speech -> emotion8 student (RAVDESS or distilled)",
                        description="Train a speech emotion estimator. route=ravdess: supervised "
                                    "on RAVDESS utterance labels (frame-averaged cross-entropy); "
                                    "route=distill: per-frame KL to FER+ teacher targets in "
                                    "prepared shards. Options come from --config (YAML or JSON; "
                                    "keys = EmotionTrainConfig fields) and --set.")
    add_config_arguments(p, "route=distill epochs=5")
    p.set_defaults(func=_run_train_emotion)


def _run_train_emotion(args: argparse.Namespace) -> int:
    cfg = config_from_args(EmotionTrainConfig, args)
    result = train_emotion(cfg, config_path=args.config)
    print(json.dumps({k: v for k, v in result.items() if k not in ("test", "train_groups")}),
          file=sys.stderr)
    if result.get("test"):
        print(f"held-out: {_fmt_metrics(result['test'])}", file=sys.stderr)
    print(f"trained model: {Path(cfg.out_dir) / 'best'}", file=sys.stderr)
    return 0


def build_prepare_emotion_parser(psub: Any) -> None:
    """Add ``speechface prepare emotion SHARDS [-o OUT] [--expression NAME]`` to ``prepare``.

    Example (shell)::

        speechface prepare emotion prepared/av_mediapipe -o prepared/av_emotion8
    """
    p = psub.add_parser("emotion", help="add FER+ teacher targets_emotion8 to prepared shards",
                        description="Re-read each clip's source video, crop every frame's face "
                                    "(MediaPipe box), score it with the FER+ expression teacher "
                                    "and store per-frame targets_emotion8 in the clip.")
    p.add_argument("shards", help="shard folder from 'speechface prepare av'")
    p.add_argument("-o", "--output", default=None, help="write here (default: in place)")
    p.add_argument("--expression", default=None, metavar="NAME",
                   help="expression recogniser name or folder (default: the packaged FER+ model)")
    p.add_argument("--model", default=None, help="face_landmarker.task (default: auto)")
    p.add_argument("--margin", type=float, default=0.1, help="face crop margin per side")
    p.add_argument("--box-cache", default=None, metavar="DIR",
                   help="keep/reuse the MediaPipe face tracks here (a rerun skips MediaPipe)")
    p.add_argument("--box-every", type=int, default=1, metavar="N",
                   help="MediaPipe on every N-th frame, boxes interpolated between (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo clips that have targets")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare_emotion)


def _run_prepare_emotion(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    recs = add_emotion_targets(args.shards, args.expression, output=args.output,
                               landmarker=args.model, margin=args.margin,
                               overwrite=args.overwrite, progress=not args.quiet,
                               box_cache=args.box_cache, box_every=args.box_every)
    print(f"{len(recs)} clips hold targets_emotion8 in {args.output or args.shards}",
          file=sys.stderr)
    return 0
