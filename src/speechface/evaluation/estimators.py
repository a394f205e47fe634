"""Evaluating speech estimators the way the CAUSE paper does, plus correlations.

:func:`evaluate_estimators` runs each model on held-out clips (from their audio, with each
model's own feature extractor) and compares with the targets: MAE and MSE with 95% bootstrap
confidence intervals over utterances, per-label MAE, Pearson r and CCC, and the two baselines
— ``Zero`` (the all-zero predictor of the paper) and ``Mean`` (the training-set mean).
Utterance-level models (``lstm_mfcc``) are compared on utterance means in a second table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from ..data.clips import TrainClip
from ..speech.model import SpeechEstimator
from .metrics import evaluate_sequences, mean_baseline, per_label_table, results_table, save_results

__all__ = ["evaluate_estimators", "openface_clips", "predict_clip"]


def predict_clip(model: SpeechEstimator, clip: TrainClip) -> np.ndarray:
    """Model values for a clip: ``(frames, D)`` (frame-level) or ``(1, D)`` (utterance-level),
    as :meth:`~speechface.speech.SpeechEstimator.predict` gives them (output delay included)."""
    if clip.audio is None:
        raise DataError(f"clip {clip.name}: no audio kept; load clips with keep_audio=True")
    with torch.inference_mode():
        model.eval()
        raw = model(model.featurize(clip.audio)[None])[0]
        raw = model.delay(raw)  # the fitted output delay, as predict() applies it
        vals = model.space.activate(raw).float().cpu().numpy()
    return vals if vals.ndim == 2 else vals[None]


def _utt_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    return values[m].mean(0, keepdims=True) if m.any() else values.mean(0, keepdims=True)


def evaluate_estimators(models: Mapping[str, SpeechEstimator], clips: Sequence[TrainClip],
                        train_mean: np.ndarray | None = None, *, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """Evaluate models against clip targets.

    Args:
        models: display name -> model (frame-level or utterance-level).
        clips: held-out clips with ``audio``, ``targets`` and ``mask``.
        train_mean: ``(D,)`` training-set target mean for the ``Mean`` baseline (skipped if None).
        n_boot: bootstrap resamples for the 95% CIs.

    Returns:
        ``{"frame": {row: result}, "utterance": {row: result}, "labels": [...], "n_clips": N}``
        where each result is :func:`speechface.evaluation.metrics.evaluate_sequences` output.
    """
    if not clips:
        raise DataError("no clips to evaluate")
    space = next(iter(models.values())).space if models else None
    labels = list(space.labels) if space is not None else None
    targets = [c.targets.numpy() for c in clips]
    masks = [c.mask.numpy().astype(bool) for c in clips]
    kw = {"labels": labels, "n_boot": n_boot, "seed": seed}
    frame: dict[str, Any] = {}
    utt: dict[str, Any] = {}
    utt_targets = [_utt_mean(t, m) for t, m in zip(targets, masks)]
    ones = [np.ones(1, dtype=bool)] * len(clips)
    frame["Zero"] = evaluate_sequences([np.zeros_like(t) for t in targets], targets, masks, **kw)
    utt["Zero"] = evaluate_sequences([np.zeros_like(t) for t in utt_targets], utt_targets, ones, **kw)
    if train_mean is not None:
        frame["Mean"] = evaluate_sequences(mean_baseline(train_mean, targets), targets, masks, **kw)
        utt["Mean"] = evaluate_sequences(mean_baseline(train_mean, utt_targets), utt_targets, ones, **kw)
    for name, model in models.items():
        preds = [predict_clip(model, c) for c in clips]
        if model.network.frame_level:
            preds = [p[: len(t)] for p, t in zip(preds, targets)]
            short = [len(t) - len(p) for p, t in zip(preds, targets)]
            fixed = [np.concatenate([p, np.repeat(p[-1:], s, 0)]) if s > 0 else p
                     for p, s in zip(preds, short)]
            frame[name] = evaluate_sequences(fixed, targets, masks, **kw)
            utt[name] = evaluate_sequences([p.mean(0, keepdims=True) for p in fixed], utt_targets,
                                           ones, **kw)
        else:
            utt[name] = evaluate_sequences(preds, utt_targets, ones, **kw)
    return {"frame": frame, "utterance": utt, "labels": labels, "n_clips": len(clips),
            "n_frames": int(sum(m.sum() for m in masks))}


def report(results: Mapping[str, Any], out_dir: str | os.PathLike[str] | None = None,
           meta: Mapping[str, Any] | None = None) -> str:
    """Markdown report: the Table-1-shaped frame-level table, per-AU tables, utterance means."""
    frame, utt = results["frame"], results["utterance"]
    parts = ["### Frame-level (per 25 fps frame)", "", results_table(frame), "",
             "#### Per-label MAE", "", per_label_table(frame, "mae"), "",
             "#### Per-label Pearson r", "", per_label_table(frame, "pearson"), "",
             "#### Per-label CCC", "", per_label_table(frame, "ccc"), "",
             "### Utterance means", "", results_table(utt), ""]
    text = "\n".join(parts)
    if out_dir is not None:
        out = Path(out_dir)
        save_results(out / "results.json", None, dict(results), dict(meta or {}))
        (out / "results.md").write_text(text)
    return text


def openface_clips(csv_paths: Sequence[str | os.PathLike[str]], audio_for: Mapping[str, str] | None = None,
                   *, audio_root: str | os.PathLike[str] | None = None, group_of: Any = None,
                   feature: str = "logmel") -> list[TrainClip]:
    """Clips whose targets are real OpenFace AU tracks (CSV) and whose audio is a speech file.

    Args:
        csv_paths: OpenFace CSV files.
        audio_for: CSV stem -> audio path; or give ``audio_root`` to find RAVDESS audio by name
            (``03-...`` audio-only file for a ``01-...`` audio-visual CSV, under ``Actor_NN/``).
        group_of: function CSV stem -> group (default: the RAVDESS actor, else the stem).
    """
    from ..audio.waveform import load_audio
    from ..core.registry import FEATURES
    from ..data.openface import read_openface_csv, to_frame_grid

    fx = FEATURES.create(feature)
    clips = []
    for p in map(Path, csv_paths):
        stem = p.stem
        if audio_for is not None and stem in audio_for:
            audio_path = Path(audio_for[stem])
        elif audio_root is not None:
            fields = stem.split("-")
            if len(fields) != 7:
                raise DataError(f"{p}: cannot find its audio (not a RAVDESS name); pass audio_for")
            name = "-".join(["03", *fields[1:]])
            hits = list(Path(audio_root).glob(f"Actor_{fields[6]}/{name}.*"))
            if not hits:
                raise DataError(f"{p}: no audio {name}.* under {audio_root}/Actor_{fields[6]}")
            audio_path = hits[0]
        else:
            raise DataError(f"{p}: no audio given")
        track = read_openface_csv(p)
        wave = load_audio(audio_path)
        with torch.no_grad():
            feats = fx(wave)
        n = feats.shape[-1]
        grid, mask = to_frame_grid(track.times, track.aus, track.valid, n, fps=25.0)
        group = group_of(stem) if group_of else (f"actor{stem.split('-')[-1]}"
                                                 if len(stem.split("-")) == 7 else stem)
        clips.append(TrainClip(stem, group, feats.T.contiguous(), torch.from_numpy(grid).float(),
                               torch.from_numpy(mask), audio=wave))
    return clips
