"""Evaluation metrics for frame-level regression (AUs, emotions, landmarks) and classification.

Regression inputs are *lists of utterances*: ``preds[i]`` and ``targets[i]`` are arrays of shape
``(frames_i, D)`` (numpy arrays or torch tensors; a 1-D array counts as ``D = 1``) and optional
``masks[i]`` are ``(frames_i,)`` booleans (``True`` = the frame counts). This matches the CAUSE
paper (Kameoka et al., Interspeech 2022), which reports MAE and MSE of the 17 AU intensities over
all frames of the test utterances, with a "Zero" baseline (predict 0 everywhere).

>>> import numpy as np
>>> from speechface.evaluation.metrics import evaluate_sequences, zero_baseline, results_table
>>> targets = [np.ones((10, 17)), np.zeros((5, 17))]
>>> res = evaluate_sequences(zero_baseline(targets), targets, n_boot=200)
>>> round(res["mae"], 4), res["n_utterances"], res["n_frames"]
(0.6667, 2, 15)
>>> print(results_table({"Zero": res}).splitlines()[0])
| Model | MAE [95% CI] | MSE [95% CI] |

Conventions (documented decisions):

- Overall MAE/MSE = mean over all valid frames *and* dimensions (frame-weighted: long utterances
  count more). The 95% CI is a percentile bootstrap over *utterances* (resampled with
  replacement; the frame-weighted mean is recomputed per resample), because frames within an
  utterance are strongly correlated. With one utterance the interval collapses to the point.
- Per-label MAE, Pearson r and Lin's CCC pool all valid frames of all utterances.
  Pearson r is ``nan`` when either series is constant. CCC uses population (biased) moments as in
  Lin (1989); it is ``nan`` only when both series are constant and equal (0/0). A constant
  prediction of a varying target (e.g. the Zero baseline) has CCC = 0. ``nan`` becomes ``None``
  in JSON (:func:`to_jsonable`, :func:`save_results`).
- Invalid inputs raise :class:`~speechface.core.errors.DataError` (a ``ValueError``). Non-finite values
  in *valid* frames are an error: mask such frames (e.g. failed OpenFace tracking) instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core._io import atomic_write
from ..core.errors import DataError

__all__ = [
    "evaluate_sequences",
    "bootstrap_mean_ci",
    "zero_baseline",
    "mean_baseline",
    "frame_mean",
    "mae",
    "mse",
    "pearson",
    "ccc",
    "results_table",
    "per_label_table",
    "to_jsonable",
    "save_results",
    "accuracy",
    "macro_f1",
    "confusion_matrix",
    "plot_confusion",
]


# --------------------------------------------------------------------------------------------
# input handling


def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """numpy copy/view of an array-like or torch tensor (detached, on CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _as_list(seqs: Any, what: str) -> list[Any]:
    """A list of utterances from a list/tuple, or the first axis of a 3-D array/tensor."""
    if isinstance(seqs, (list, tuple)):
        return list(seqs)
    arr = seqs
    ndim = getattr(arr, "ndim", None)
    if ndim == 3:
        return [arr[i] for i in range(arr.shape[0])]
    if ndim == 2:  # one utterance given bare
        return [arr]
    raise DataError(f"{what}: expected a list of (frames, D) arrays or a (N, frames, D) array, "
                    f"got {type(seqs).__name__}")


def _prepare(preds: Any, targets: Any, masks: Any = None
             ) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Validated per-utterance (pred, target) arrays restricted to valid frames."""
    p_list = _as_list(preds, "preds")
    t_list = _as_list(targets, "targets")
    if len(p_list) != len(t_list):
        raise DataError(f"preds has {len(p_list)} utterances but targets has {len(t_list)}")
    if len(t_list) == 0:
        raise DataError("no utterances to evaluate")
    m_list: list[Any] | None = None
    if masks is not None:
        if isinstance(masks, (list, tuple)):
            m_list = list(masks)
        elif getattr(masks, "ndim", None) == 2:  # (N, frames) padded masks
            m_list = [masks[i] for i in range(masks.shape[0])]
        else:
            m_list = [masks]
    if m_list is not None and len(m_list) != len(t_list):
        raise DataError(f"masks has {len(m_list)} entries but targets has {len(t_list)}")
    out_p: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    dim = -1
    for i, (p, t) in enumerate(zip(p_list, t_list)):
        p, t = _np(p), _np(t)
        if p.ndim == 1:
            p = p[:, None]
        if t.ndim == 1:
            t = t[:, None]
        if p.ndim != 2 or t.ndim != 2:
            raise DataError(f"utterance {i}: expected (frames, D) arrays, got pred {p.shape} "
                            f"and target {t.shape}")
        if p.shape != t.shape:
            raise DataError(f"utterance {i}: pred shape {p.shape} != target shape {t.shape}")
        if dim < 0:
            dim = t.shape[1]
        elif t.shape[1] != dim:
            raise DataError(f"utterance {i}: {t.shape[1]} dimensions, earlier utterances had {dim}")
        if m_list is not None and m_list[i] is not None:
            m = _np(m_list[i], dtype=bool).reshape(-1)
            if m.shape[0] != t.shape[0]:
                raise DataError(f"utterance {i}: mask has {m.shape[0]} frames, target has "
                                f"{t.shape[0]}")
            p, t = p[m], t[m]
        if not (np.isfinite(p).all() and np.isfinite(t).all()):
            raise DataError(f"utterance {i}: non-finite values in valid frames (mask them out)")
        out_p.append(p)
        out_t.append(t)
    return out_p, out_t, dim


def _labels(labels: Any, dim: int) -> list[str]:
    if labels is None:
        return [f"dim_{k}" for k in range(dim)]
    if isinstance(labels, str) or hasattr(labels, "labels"):
        from ..spaces.space import get_space

        labels = get_space(labels).labels
    labels = [str(x) for x in labels]
    if len(labels) != dim:
        raise DataError(f"{len(labels)} labels given for {dim} dimensions")
    return labels


# --------------------------------------------------------------------------------------------
# pooled metrics on flat arrays


def mae(pred: Any, target: Any) -> float:
    """Mean absolute error over all elements of two same-shape arrays.

    >>> mae([1.0, 2.0], [2.0, 4.0])
    1.5
    """
    p, t = _np(pred), _np(target)
    return float(np.mean(np.abs(p - t)))


def mse(pred: Any, target: Any) -> float:
    """Mean squared error over all elements of two same-shape arrays.

    >>> mse([1.0, 2.0], [2.0, 4.0])
    2.5
    """
    p, t = _np(pred), _np(target)
    return float(np.mean((p - t) ** 2))


def pearson(x: Any, y: Any) -> float:
    """Pearson correlation of two 1-D series (``nan`` if either is constant or has < 2 values).

    >>> pearson([1, 2, 3], [2, 4, 7]) > 0.98
    True
    >>> import math; math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    True
    """
    x, y = _np(x).ravel(), _np(y).ravel()
    if x.size < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy = float(xc @ xc), float(yc @ yc)
    scale = max(float(np.abs(x).max()), float(np.abs(y).max()), 1e-300)
    eps = (1e-12 * scale) ** 2 * x.size  # constant up to rounding counts as constant
    if sxx <= eps or syy <= eps:
        return math.nan
    return float(np.clip((xc @ yc) / math.sqrt(sxx * syy), -1.0, 1.0))


def ccc(x: Any, y: Any) -> float:
    """Lin's concordance correlation coefficient of two 1-D series.

    ``ccc = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2)`` with population moments.
    1 = identical, -1 = ``y = -x`` around a shared mean, < 1 for any shift or scale difference.
    ``nan`` only when both series are constant and equal (0/0) or there are no values.

    >>> ccc([1, 2, 3], [1, 2, 3])
    1.0
    >>> round(ccc([1, 2, 3], [2, 3, 4]), 4)   # 2(2/3) / (2/3 + 2/3 + 1)
    0.5714
    """
    x, y = _np(x).ravel(), _np(y).ravel()
    if x.size == 0:
        return math.nan
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = float(np.mean((x - mx) * (y - my)))
    den = float(vx + vy + (mx - my) ** 2)
    if den <= 1e-300:
        return math.nan
    return float(np.clip(2.0 * cov / den, -1.0, 1.0))


# --------------------------------------------------------------------------------------------
# sequence evaluation


def evaluate_sequences(preds: Any, targets: Any, masks: Any = None, labels: Any = None,
                       n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Evaluate per-utterance predictions against targets (the CAUSE paper's Table 1 metrics).

    Args:
        preds: list of ``(frames_i, D)`` arrays or tensors (or one ``(N, frames, D)`` array).
        targets: same shapes as ``preds``.
        masks: optional list of ``(frames_i,)`` booleans; ``False`` frames are ignored
            (an entry may be ``None`` = all frames valid).
        labels: ``D`` names for the per-label results, or a space (``"au17"``, ``AU17``);
            default ``dim_0 .. dim_{D-1}``.
        n_boot: bootstrap resamples for the confidence intervals (0 = no CI).
        seed: seed of the bootstrap generator (results are deterministic).

    Returns:
        A dict of plain Python values::

            {"n_utterances": int,        # utterances with >= 1 valid frame
             "n_frames": int,            # valid frames in total
             "dim": D,
             "mae": float, "mae_ci": [lo, hi],   # mean over frames and dims, 95% CI
             "mse": float, "mse_ci": [lo, hi],
             "labels": [str] * D,
             "per_label": {label: {"mae": float, "pearson": float, "ccc": float}},
             "n_boot": int, "seed": int}

        CIs are ``[nan, nan]`` when ``n_boot == 0``; per-label correlations may be ``nan``.

    Example:
        >>> import numpy as np
        >>> t = [np.array([[0.0], [1.0], [2.0]])]
        >>> r = evaluate_sequences([t[0] + 1], t, n_boot=10)
        >>> r["mae"], r["mse"], r["per_label"]["dim_0"]["pearson"]
        (1.0, 1.0, 1.0)
    """
    p_list, t_list, dim = _prepare(preds, targets, masks)
    names = _labels(labels, dim)
    frames = np.array([t.shape[0] for t in t_list], dtype=np.int64)
    keep = frames > 0
    if not keep.any():
        raise DataError("no valid frames to evaluate (all masked out or empty)")
    abs_sum = np.array([np.abs(p - t).sum() for p, t in zip(p_list, t_list)])[keep]
    sq_sum = np.array([((p - t) ** 2).sum() for p, t in zip(p_list, t_list)])[keep]
    counts = frames[keep].astype(np.float64) * dim
    n_utt = int(keep.sum())
    total = counts.sum()
    mae_v = float(abs_sum.sum() / total)
    mse_v = float(sq_sum.sum() / total)

    if n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n_utt, size=(int(n_boot), n_utt))
        c = counts[idx].sum(1)
        boot_mae = abs_sum[idx].sum(1) / c
        boot_mse = sq_sum[idx].sum(1) / c
        mae_ci = [float(v) for v in np.percentile(boot_mae, [2.5, 97.5])]
        mse_ci = [float(v) for v in np.percentile(boot_mse, [2.5, 97.5])]
        # percentiles of a finite sample can miss the point by rounding; keep it inside
        mae_ci = [min(mae_ci[0], mae_v), max(mae_ci[1], mae_v)]
        mse_ci = [min(mse_ci[0], mse_v), max(mse_ci[1], mse_v)]
    else:
        mae_ci = [math.nan, math.nan]
        mse_ci = [math.nan, math.nan]

    p_all = np.concatenate(p_list, 0)
    t_all = np.concatenate(t_list, 0)
    per_label = {
        name: {
            "mae": float(np.mean(np.abs(p_all[:, k] - t_all[:, k]))),
            "pearson": pearson(p_all[:, k], t_all[:, k]),
            "ccc": ccc(p_all[:, k], t_all[:, k]),
        }
        for k, name in enumerate(names)
    }
    return {
        "n_utterances": n_utt,
        "n_frames": int(frames.sum()),
        "dim": int(dim),
        "mae": mae_v,
        "mae_ci": mae_ci,
        "mse": mse_v,
        "mse_ci": mse_ci,
        "labels": names,
        "per_label": per_label,
        "n_boot": int(n_boot),
        "seed": int(seed),
    }


def zero_baseline(targets: Any) -> list[np.ndarray]:
    """The paper's "Zero" baseline: an all-zero prediction shaped like each target.

    Args:
        targets: list of ``(frames_i, D)`` arrays/tensors.

    Returns:
        list of ``(frames_i, D)`` float32 zero arrays.

    Example:
        >>> import numpy as np
        >>> [z.shape for z in zero_baseline([np.ones((4, 17)), np.ones((2, 17))])]
        [(4, 17), (2, 17)]
    """
    return [np.zeros(_np(t).shape, dtype=np.float32) for t in _as_list(targets, "targets")]


def bootstrap_mean_ci(values: Any, n_boot: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile-bootstrap interval of the mean of ``values`` (e.g. one r per clip).

    Example:
        >>> lo, hi = bootstrap_mean_ci([0.2, 0.4, 0.6, 0.8])
        >>> 0.2 <= lo <= 0.5 <= hi <= 0.8
        True
    """
    v = _np(values).reshape(-1)
    if len(v) == 0:
        return [math.nan, math.nan]
    rng = np.random.default_rng(seed)
    means = [v[rng.integers(0, len(v), len(v))].mean() for _ in range(int(n_boot))]
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def mean_baseline(train_mean: Any, targets: Any) -> list[np.ndarray]:
    """The "Mean" baseline: predict the training-set mean of each dimension in every frame.

    Args:
        train_mean: ``(D,)`` per-dimension mean of the *training* targets (see :func:`frame_mean`).
        targets: list of ``(frames_i, D)`` arrays (only their shapes are used).

    Returns:
        list of ``(frames_i, D)`` float32 arrays filled with ``train_mean``.

    Example:
        >>> import numpy as np
        >>> mean_baseline([0.5, 1.0], [np.zeros((3, 2))])[0][0].tolist()
        [0.5, 1.0]
    """
    m = _np(train_mean).reshape(-1).astype(np.float32)
    out = []
    for i, t in enumerate(_as_list(targets, "targets")):
        shape = _np(t).shape
        d = shape[1] if len(shape) == 2 else 1
        if d != m.shape[0]:
            raise DataError(f"train_mean has {m.shape[0]} values, target {i} has {d} dimensions")
        out.append(np.broadcast_to(m, (shape[0], d)).reshape(shape).copy())
    return out


def frame_mean(targets: Any, masks: Any = None) -> np.ndarray:
    """Frame-weighted mean of each dimension over all valid frames, e.g. of training targets.

    Returns:
        ``(D,)`` float64 array.

    Example:
        >>> import numpy as np
        >>> frame_mean([np.zeros((1, 2)), np.ones((3, 2))]).tolist()
        [0.75, 0.75]
    """
    _, t_list, dim = _prepare(targets, targets, masks)
    t_all = np.concatenate(t_list, 0)
    if t_all.shape[0] == 0:
        raise DataError("no valid frames to average")
    return t_all.mean(0)


# --------------------------------------------------------------------------------------------
# tables and files


def _fmt(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"


def _with_ci(res: Mapping[str, Any], key: str, digits: int) -> str:
    s = _fmt(res.get(key), digits)
    ci = res.get(f"{key}_ci")
    if ci is not None and len(ci) == 2 and all(c is not None and not math.isnan(c) for c in ci):
        s += f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return s


def _render(header: list[str], body: list[list[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines) + "\n"
    if fmt == "text":
        widths = [max(len(str(r[k])) for r in [header, *body]) for k in range(len(header))]
        def line(r: list[str]) -> str:
            return "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
        return "\n".join([line(header), "  ".join("-" * w for w in widths)]
                         + [line(r) for r in body]) + "\n"
    raise ValueError(f"unknown table format {fmt!r} (choose 'markdown' or 'text')")


def results_table(rows: Mapping[str, Mapping[str, Any]], fmt: str = "markdown",
                  digits: int = 3) -> str:
    """Table shaped like the CAUSE paper's Table 1: ``Model | MAE [95% CI] | MSE [95% CI]``.

    Args:
        rows: model name -> result dict of :func:`evaluate_sequences` (rows keep this order,
            e.g. Zero, Mean, MLP, RNN, CNN, DCNN).
        fmt: ``"markdown"`` or ``"text"`` (aligned plain text).
        digits: decimals shown.

    Example:
        >>> r = {"mae": 0.5, "mae_ci": [0.4, 0.6], "mse": 0.3, "mse_ci": [0.2, 0.4]}
        >>> print(results_table({"Zero": r}, fmt="text"))
        Model          MAE [95% CI]          MSE [95% CI]
        -----  --------------------  --------------------
        Zero   0.500 [0.400, 0.600]  0.300 [0.200, 0.400]
        <BLANKLINE>
    """
    header = ["Model", "MAE [95% CI]", "MSE [95% CI]"]
    body = [[str(name), _with_ci(r, "mae", digits), _with_ci(r, "mse", digits)]
            for name, r in rows.items()]
    return _render(header, body, fmt)


def per_label_table(rows: Mapping[str, Mapping[str, Any]], metric: str = "mae",
                    fmt: str = "markdown", digits: int = 3) -> str:
    """Per-label table: one row per model, one column per label, plus the mean over labels.

    Args:
        rows: model name -> result dict of :func:`evaluate_sequences` (same labels in all).
        metric: ``"mae"``, ``"pearson"`` or ``"ccc"``.
        fmt: ``"markdown"`` or ``"text"``.

    Undefined values (``nan``/``None``) show as ``n/a`` and are left out of the mean.

    Example:
        >>> r = {"labels": ["AU01"], "per_label": {"AU01": {"mae": 0.25, "pearson": None,
        ...      "ccc": 0.0}}}
        >>> print(per_label_table({"Zero": r}, metric="pearson"))
        | Model | AU01 | mean |
        |---|---:|---:|
        | Zero | n/a | n/a |
        <BLANKLINE>
    """
    if metric not in ("mae", "pearson", "ccc"):
        raise ValueError(f"unknown metric {metric!r} (choose 'mae', 'pearson' or 'ccc')")
    labels: list[str] = []
    for r in rows.values():
        for lab in r.get("labels") or list(r.get("per_label", {})):
            if lab not in labels:
                labels.append(lab)
    body = []
    for name, r in rows.items():
        per = r.get("per_label", {})
        vals = [per.get(lab, {}).get(metric) for lab in labels]
        finite = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
        mean = sum(finite) / len(finite) if finite else None
        body.append([str(name)] + [_fmt(v, digits) for v in vals] + [_fmt(mean, digits)])
    return _render(["Model", *labels, "mean"], body, fmt)


def to_jsonable(obj: Any) -> Any:
    """Copy of ``obj`` that ``json.dump`` accepts: numpy/torch values become Python values,
    ``nan``/``inf`` become ``None``.

    >>> to_jsonable({"r": float("nan"), "a": [1.5]})
    {'r': None, 'a': [1.5]}
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def save_results(path_json: str | os.PathLike[str], path_md: str | os.PathLike[str] | None,
                 rows: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any] | None = None
                 ) -> None:
    """Write results as JSON and a Markdown report, each atomically (complete or absent).

    Args:
        path_json: ``{"meta": meta, "results": rows}`` with ``nan`` as ``null``.
        path_md: Markdown with the Table-1-style table and per-label MAE / Pearson / CCC tables
            (``None`` = skip). ``meta["title"]`` (if any) becomes the heading; other ``meta``
            entries are listed under it.
        rows: model name -> result dict of :func:`evaluate_sequences`.
        meta: free-form description (data, split, checkpoint ...).

    Example:
        >>> save_results("runs/eval.json", "runs/eval.md", {"Zero": res},   # doctest: +SKIP
        ...              {"title": "RAVDESS val", "split": "actors 1-4"})
    """
    meta = dict(meta or {})
    with atomic_write(path_json) as f:
        json.dump(to_jsonable({"meta": meta, "results": rows}), f, indent=2)
        f.write("\n")
    if path_md is None:
        return
    title = str(meta.pop("title", "Evaluation results"))
    parts = [f"# {title}\n"]
    if meta:
        parts.append("\n".join(f"- **{k}**: {to_jsonable(v)}" for k, v in meta.items()) + "\n")
    parts.append(results_table(rows))
    if any(r.get("per_label") for r in rows.values()):
        for metric, name in (("mae", "MAE"), ("pearson", "Pearson r"), ("ccc", "CCC")):
            parts.append(f"## Per-label {name}\n")
            parts.append(per_label_table(rows, metric=metric))
    with atomic_write(path_md) as f:
        f.write("\n".join(parts))


# --------------------------------------------------------------------------------------------
# classification


def _class_labels(x: Any, what: str) -> np.ndarray:
    """``(N,)`` int labels; ``(N, C)`` scores/distributions are reduced by argmax."""
    a = _np(x, dtype=None)
    if a.ndim == 2:
        a = a.argmax(1)
    if a.ndim != 1:
        raise DataError(f"{what}: expected (N,) labels or (N, C) scores, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise DataError(f"{what}: labels must be integers")
    return a.astype(np.int64)


def _pair(pred: Any, true: Any, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    p, t = _class_labels(pred, "pred"), _class_labels(true, "true")
    if p.shape != t.shape:
        raise DataError(f"pred has {p.shape[0]} labels but true has {t.shape[0]}")
    if p.size == 0:
        raise DataError("no labels to evaluate")
    if n_classes is not None:
        for a, what in ((p, "pred"), (t, "true")):
            if a.min() < 0 or a.max() >= n_classes:
                raise DataError(f"{what} labels must lie in 0..{n_classes - 1}, "
                                f"got {a.min()}..{a.max()}")
    return p, t


def accuracy(pred_labels: Any, true_labels: Any) -> float:
    """Fraction of equal labels. ``(N, C)`` scores are reduced by argmax.

    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    p, t = _pair(pred_labels, true_labels)
    return float(np.mean(p == t))


def confusion_matrix(pred: Any, true: Any, n_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts; row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 1], [0, 1]]
    """
    p, t = _pair(pred, true, n_classes)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def macro_f1(pred: Any, true: Any, n_classes: int) -> float:
    """Unweighted mean of per-class F1 scores.

    A class that never occurs in ``true`` nor in ``pred`` has no defined F1 and is left out of
    the mean (e.g. ``contempt`` on RAVDESS); a class that occurs in only one of them scores 0.

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 3), 4)   # F1 = 2/3, 4/5; class 2 absent
    0.7333
    """
    cm = confusion_matrix(pred, true, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return float(f1.mean())


def plot_confusion(cm: Any, labels: Sequence[str], path: str | os.PathLike[str],
                   normalize: bool = True, title: str | None = None) -> Path:
    """Save a confusion-matrix heat map (needs matplotlib: ``pip install speechface[train]``).

    Args:
        cm: ``(C, C)`` counts from :func:`confusion_matrix` (row = true, column = predicted).
        labels: ``C`` class names.
        path: output image (``.png``, ``.pdf``, ``.svg`` ...), written atomically.
        normalize: colour by row-normalised rate (cells also show the counts).
        title: optional figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> from speechface.spaces import EMOTION8
        >>> cm = confusion_matrix(pred, true, 8)                              # doctest: +SKIP
        >>> plot_confusion(cm, EMOTION8.labels, "runs/confusion.png")         # doctest: +SKIP
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_confusion needs matplotlib: pip install matplotlib "
                          "(or pip install 'speechface[train]')") from e
    m = _np(cm, dtype=np.int64)
    n = len(labels)
    if m.shape != (n, n):
        raise DataError(f"confusion matrix shape {m.shape} does not match {n} labels")
    rates = m / np.maximum(m.sum(1, keepdims=True), 1) if normalize else m.astype(np.float64)
    size = 1.2 + 0.6 * n
    fig = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    hi = float(rates.max()) if rates.size else 0.0
    for i in range(n):
        for j in range(n):
            txt = f"{m[i, j]}" + (f"\n{rates[i, j]:.2f}" if normalize else "")
            ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 * hi and hi > 0 else "black")
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=120)
    return path
