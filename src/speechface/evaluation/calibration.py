"""Per-dimension output calibration of a speech estimator against real target values.

A model trained on proxy targets (MediaPipe blendshapes mapped to AUs) predicts on the proxy's
scale. :func:`fit_calibration` fits, for each AU, ``value = scale * raw + bias`` on clips with
real OpenFace tracks. Three methods:

- ``"floor"`` (the default): least squares, but the scale never falls below ``floor`` times the
  moment-matching scale ``std(target) / std(raw)``, so an AU whose targets vary is **never turned
  into a constant** (least squares alone damps a weakly related AU down to its mean: with six
  tracks that is what made 12 of 17 AUs constant in an earlier default model);
- ``"moments"``: mean and standard deviation matching (``scale = std(target) / std(raw)``);
- ``"least_squares"``: plain least squares with ``scale >= min_scale`` (may flatten).

The scale is capped at ``max_scale`` so that a nearly constant raw output is not blown up into
noise. :func:`cross_validate_calibration` measures what a method gives on held-out speakers
(leave one group out), so the reported numbers never come from the clips a calibration was fitted
on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from ..data.clips import TrainClip
from ..speech.delay import check_delay, delay_outputs
from ..speech.model import SpeechEstimator
from .estimators import predict_clip
from .metrics import pearson

__all__ = ["CALIBRATION_METHODS", "fit_calibration", "apply_calibration", "cross_validate_calibration",
           "fit_dynamics_gain", "fit_output_delay", "DELAY_GRID"]


def _raw_outputs(model: SpeechEstimator, clip: TrainClip, *, delayed: bool = True) -> np.ndarray:
    """Uncalibrated raw network outputs for a clip, ``(frames, D)``, shifted by the model's
    output delay unless ``delayed=False``."""
    if clip.audio is None:
        raise DataError(f"clip {clip.name}: calibration needs its audio")
    with torch.inference_mode():
        model.eval()
        raw = model.network(model.featurize(clip.audio)[None])[0]
        if delayed:
            raw = model.delay(raw)  # commutes with the affine calibration
    return raw.float().numpy()


CALIBRATION_METHODS = ("floor", "moments", "least_squares")


def fit_calibration(model: SpeechEstimator, clips: Sequence[TrainClip], *,
                    method: str = "floor", floor: float = 0.5, max_scale: float = 10.0,
                    min_scale: float = 0.0, min_raw_std: float = 0.02
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``scale, bias`` per dimension mapping raw outputs to the clips' targets.

    Args:
        method: ``"floor"`` (least squares with ``scale >= floor * std(y) / std(raw)``),
            ``"moments"`` (``scale = std(y) / std(raw)``) or ``"least_squares"``.
        floor: the fraction of the moment-matching scale below which ``"floor"`` never goes.
        max_scale: upper bound of every scale (a nearly constant raw output is not stretched
            into noise).
        min_scale: lower bound of the least-squares scale (0: never invert a dimension).
        min_raw_std: ``"least_squares"`` only: a dimension whose raw outputs vary less than this
            (in the space's units) is set to the target mean (scale 0), the old behaviour.

    Returns:
        ``(scale (D,), bias (D,))``; the bias makes the calibrated mean equal the target mean.
        With ``"floor"`` and ``"moments"`` a dimension gets scale 0 only where its targets do not
        vary (or its raw output is exactly constant).

    Example:
        >>> scale, bias = fit_calibration(model, clips, method="floor")   # doctest: +SKIP
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    xs, ys = [], []
    for c in clips:
        raw = _raw_outputs(model, c)
        n = min(len(raw), len(c.targets))
        m = c.mask[:n].numpy().astype(bool)
        xs.append(raw[:n][m])
        ys.append(c.targets[:n].numpy()[m])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) < 2:
        raise DataError("calibration needs at least two valid frames")
    xm, ym = x.mean(0), y.mean(0)
    var = ((x - xm) ** 2).mean(0)
    cov = ((x - xm) * (y - ym)).mean(0)
    ls = np.where(var > 1e-12, cov / np.maximum(var, 1e-12), 0.0)
    y_std = y.std(0)
    moments = np.where(var > 1e-12, y_std / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    if method == "least_squares":
        scale = np.where(np.sqrt(var) < min_raw_std, 0.0, np.maximum(ls, min_scale))
    elif method == "moments":
        scale = moments
    else:
        scale = np.maximum(np.maximum(ls, min_scale), floor * moments)
    scale = np.minimum(scale, max_scale)
    bias = ym - scale * xm
    return scale.astype(np.float32), bias.astype(np.float32)


def apply_calibration(model: SpeechEstimator, scale: np.ndarray, bias: np.ndarray) -> SpeechEstimator:
    """A copy of ``model`` whose outputs are ``scale * raw + bias`` (replacing any calibration)."""
    out = copy.deepcopy(model)
    out.set_calibration(torch.from_numpy(np.asarray(scale)), torch.from_numpy(np.asarray(bias)))
    return out


def cross_validate_calibration(models: dict[str, SpeechEstimator], clips: Sequence[TrainClip], *,
                               n_boot: int = 1000, **fit_kwargs: Any) -> dict[str, Any]:
    """Leave-one-group-out evaluation of calibrated models on real target tracks.

    For each group (speaker), every model is calibrated on the other groups' clips and run on
    this group's clips; the ``Mean`` baseline is the other groups' target mean. The predictions
    of all folds are pooled and scored with :func:`~speechface.evaluation.evaluate_estimators`'
    metrics (``Zero``, ``Mean``, then each model, calibrated). ``fit_kwargs`` go to
    :func:`fit_calibration`.
    """
    from .metrics import evaluate_sequences

    groups = sorted({c.group for c in clips})
    if len(groups) < 2:
        raise DataError("cross-validation needs clips of at least two groups")
    labels = list(next(iter(models.values())).space.labels)
    preds: dict[str, list[np.ndarray]] = {"Zero": [], "Mean": [], **{k: [] for k in models}}
    targets, masks = [], []
    for g in groups:
        held = [c for c in clips if c.group == g]
        rest = [c for c in clips if c.group != g]
        y_rest = np.concatenate([c.targets[c.mask].numpy() for c in rest])
        for name, model in models.items():
            cal = apply_calibration(model, *fit_calibration(model, rest, **fit_kwargs))
            preds[name] += [predict_clip(cal, c)[: len(c.targets)] for c in held]
        for c in held:
            targets.append(c.targets.numpy())
            masks.append(c.mask.numpy().astype(bool))
            preds["Zero"].append(np.zeros_like(targets[-1]))
            preds["Mean"].append(np.broadcast_to(y_rest.mean(0), targets[-1].shape).copy())
    frame = {k: evaluate_sequences(v, targets, masks, labels=labels, n_boot=n_boot)
             for k, v in preds.items()}
    return {"frame": frame, "labels": labels, "n_clips": len(clips), "groups": groups,
            "n_frames": int(sum(m.sum() for m in masks))}


def fit_dynamics_gain(model: SpeechEstimator, clips: Sequence[TrainClip], *, low: float = 1.0,
                      high: float = 8.0, min_frames: int = 20) -> dict[str, Any]:
    """Per-dimension gain that gives a model's tracks the movement range of its targets.

    For every clip (with at least ``min_frames`` labelled frames) the standard deviation over
    time of the targets and of the model's predictions is taken per dimension; the gain is the
    ratio of the two medians over clips, clipped to ``[low, high]`` (dimensions the targets do
    not move get 1). Fit it on the model's **training** clips and store it as
    ``info["dynamics_gain"]``: :func:`speechface.animate` then widens the predicted movement
    around each utterance's mean by it (global-variance compensation). Reported metrics
    (``evaluate``) are always of the raw predictions.

    Returns:
        ``{"gain": (D,) list, "target_std": ..., "predicted_std": ..., "n_clips": int}``.

    Raises:
        DataError: no clip long enough, or a clip without audio.
    """
    t_std, p_std = [], []
    for clip in clips:
        m = clip.mask.numpy().astype(bool)
        if m.sum() < min_frames:
            continue
        pred = predict_clip(model, clip)
        n = min(len(pred), len(m))
        t = clip.targets.numpy()[:n][m[:n]]
        p = pred[:n][m[:n]]
        t_std.append(t.std(0))
        p_std.append(p.std(0))
    if not t_std:
        raise DataError(f"no clip has {min_frames} or more labelled frames")
    t_med = np.median(np.stack(t_std), 0)
    p_med = np.median(np.stack(p_std), 0)
    gain = np.where(t_med > 1e-3, t_med / np.maximum(p_med, 1e-6), 1.0)
    gain = np.clip(gain, low, high)
    return {"gain": [round(float(g), 3) for g in gain],
            "target_std": [round(float(v), 4) for v in t_med],
            "predicted_std": [round(float(v), 4) for v in p_med], "n_clips": len(t_std)}


#: Output delays (frames) :func:`fit_output_delay` tries: 0 to 4 frames (160 ms) in quarters.
DELAY_GRID: tuple[float, ...] = tuple(np.arange(0.0, 4.001, 0.25).round(2).tolist())


def fit_output_delay(model: SpeechEstimator, clips: Sequence[TrainClip], *,
                     columns: Sequence[str] | None = None, grid: Sequence[float] = DELAY_GRID,
                     min_frames: int = 20) -> dict[str, Any]:
    """The output delay (frames) that best lines a model's tracks up with its targets in time.

    For each delay in ``grid`` the model's calibrated outputs are shifted
    (:func:`~speechface.speech.delay.delay_outputs`) and the Pearson r with the targets is taken
    per clip (clips with at least ``min_frames`` labelled frames) and per column in ``columns``
    (default: all; a column constant in a clip, :func:`~speechface.evaluation.metrics.pearson`
    NaN, is skipped there); the score is
    the mean over clips and columns, and the best delay wins (the smallest on ties). Fit it on
    **development** speakers whose speech is in sync with the video (a model keeps its own
    :attr:`~speechface.speech.SpeechEstimator.output_delay` out of the fit) and store it with
    ``model.output_delay = result["delay"]``.

    Returns:
        ``{"delay": float, "scores": {delay: mean r}, "columns": [...], "n_clips": int}``.

    Raises:
        DataError: no clip long enough, or a clip without audio.
        ValueError: an unknown column, an empty or negative grid, or an utterance-level model.
    """
    if not model.network.frame_level:
        raise ValueError(f"model {model.name!r} predicts one vector per utterance: no delay to fit")
    labels = list(model.space.labels)
    cols = list(columns) if columns is not None else labels
    missing = [c for c in cols if c not in labels]
    if missing:
        raise ValueError(f"unknown columns {missing}; the model's are {labels}")
    idx = [labels.index(c) for c in cols]
    delays = [check_delay(d) for d in grid]
    if not delays:
        raise ValueError("grid is empty")
    raws = [(torch.from_numpy(_raw_outputs(model, c, delayed=False)), c) for c in clips
            if int(c.mask.sum()) >= min_frames]
    if not raws:
        raise DataError(f"no clip has {min_frames} or more labelled frames")
    scores: dict[float, float] = {}
    for d in delays:
        rs = []
        for raw, clip in raws:
            pred = model.space.activate(model.calibrate(delay_outputs(raw, d))).numpy()
            m = clip.mask.numpy().astype(bool)
            n = min(len(pred), len(m))
            t, p = clip.targets.numpy()[:n][m[:n]], pred[:n][m[:n]]
            rs += [r for r in (pearson(p[:, i], t[:, i]) for i in idx) if not math.isnan(r)]
        scores[d] = float(np.mean(rs)) if rs else float("nan")
    best = max(delays, key=lambda d: (scores[d], -d))
    return {"delay": best, "scores": {d: round(v, 4) for d, v in scores.items()},
            "columns": cols, "n_clips": len(raws)}
