"""Read OpenFace 2 action-unit tracks and resample them onto the 25 fps feature grid.

Readers:

- :func:`read_openface_csv`: OpenFace ``FeatureExtraction`` / ``FaceLandmarkVid(Multi)`` CSVs
  (header names may carry a leading space: ``frame, face_id, timestamp, confidence, success,
  ... AU01_r ...``), cut-down tracks without ``success`` (then ``success = confidence >=
  min_confidence``) and speechface's own prediction CSV (``frame,timestamp,AU01_r..``).
- :func:`read_au_table`: per-image AU tables (``image,AU01_r,...``, e.g. GANimation's
  ``aus_openface.csv``).

:func:`to_frame_grid` resamples any per-frame track (OpenFace at 29.97 fps, a teacher on a
30 fps video ...) onto the audio features' grid ``t_n = n / fps``.

Example:
    >>> track = read_openface_csv("clip.csv")                       # doctest: +SKIP
    >>> aus, mask = to_frame_grid(track.times, track.aus, track.valid, n_frames=100)  # doctest: +SKIP
    >>> aus.shape, mask.shape                                      # doctest: +SKIP
    ((100, 17), (100,))
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..spaces.space import AU17

__all__ = ["OpenFaceTrack", "read_openface_csv", "read_au_table", "to_frame_grid"]


@dataclass
class OpenFaceTrack:
    """An AU track read from a CSV.

    Attributes:
        times: ``(N,)`` float64 seconds (the ``timestamp`` column).
        aus: ``(N, 17)`` float32 intensities in AU17 order (NaN kept where the file had none).
        confidence: ``(N,)`` float32 tracking confidence (1 when the file has none).
        success: ``(N,)`` bool tracking success (``confidence >= min_confidence`` when the file
            has no ``success`` column).
        frame: ``(N,)`` int64 frame numbers as written (OpenFace counts from 1).
        fps: frame rate estimated from the timestamps (frames advanced / seconds elapsed).
        landmarks68: ``(N, 136)`` float32 ``x_0..x_67, y_0..y_67`` in pixels when the file has
            them, else ``None``.
        path: the file.
    """

    times: np.ndarray
    aus: np.ndarray
    confidence: np.ndarray
    success: np.ndarray
    frame: np.ndarray
    fps: float
    landmarks68: np.ndarray | None = None
    path: Path | None = None

    @property
    def valid(self) -> np.ndarray:
        """``(N,)`` bool: successful rows whose AU values are all finite."""
        return self.success & np.isfinite(self.aus).all(axis=1)

    def __len__(self) -> int:
        return int(self.times.shape[0])


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from e
    if not rows:
        raise DataError(f"{path}: empty CSV")
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _float(cell: str) -> float:
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _column(header: list[str], rows: list[list[str]], name: str) -> np.ndarray:
    j = header.index(name)
    return np.array([_float(r[j]) if j < len(r) else math.nan for r in rows], dtype=np.float64)


def _au_columns(header: list[str], path: Path) -> list[int]:
    missing = [c for c in AU17.columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing AU columns {', '.join(missing)} "
                        f"(need all of {', '.join(AU17.columns)})")
    return [header.index(c) for c in AU17.columns]


def read_openface_csv(path: str | os.PathLike[str], *, min_confidence: float = 0.5,
                      face_id: int | None = None, fps: float | None = None) -> OpenFaceTrack:
    """Read an OpenFace 2 CSV (or a speechface prediction CSV) into an :class:`OpenFaceTrack`.

    Args:
        path: the CSV. Needs the 17 ``AUxx_r`` columns and ``timestamp`` (or ``frame`` plus
            ``fps``). Header names are stripped of spaces.
        min_confidence: rows below this ``confidence`` are not valid; also decides ``success``
            when the file has no such column.
        face_id: keep only this face of a multi-face CSV (default: the smallest id present).
        fps: frame rate used to make times from ``frame`` when there is no ``timestamp``.

    Returns:
        :class:`OpenFaceTrack`; ``track.valid`` masks failed, low-confidence and NaN rows.

    Raises:
        DataError: missing/unreadable file, missing AU columns (listed), no time information.

    Example:
        >>> tr = read_openface_csv("ravdess_openface/01-01-03-02-02-01-01.csv")  # doctest: +SKIP
        >>> tr.aus.shape, round(tr.fps, 2)                                        # doctest: +SKIP
        ((117, 17), 29.97)
    """
    p = Path(path)
    header, rows = _read_table(p)
    au_idx = _au_columns(header, p)
    if not rows:
        raise DataError(f"{p}: CSV has a header but no rows")
    if "face_id" in header:
        ids = _column(header, rows, "face_id")
        keep_id = float(np.nanmin(ids)) if face_id is None else float(face_id)
        rows = [r for r, i in zip(rows, ids) if i == keep_id]
        if not rows:
            raise DataError(f"{p}: no rows for face_id {face_id}")
    n = len(rows)
    aus = np.array([[_float(r[j]) if j < len(r) else math.nan for j in au_idx] for r in rows],
                   dtype=np.float32)
    frame = (_column(header, rows, "frame") if "frame" in header
             else np.arange(1, n + 1, dtype=np.float64))
    if "timestamp" in header:
        times = _column(header, rows, "timestamp")
    elif fps:
        times = (frame - frame[0]) / float(fps)
    else:
        raise DataError(f"{p}: no 'timestamp' column; pass fps= to derive times from 'frame'")
    if not np.isfinite(times).all():
        raise DataError(f"{p}: timestamp column has empty or non-numeric values")
    if n > 1 and np.any(np.diff(times) <= 0):
        raise DataError(f"{p}: timestamps must increase")
    conf = (_column(header, rows, "confidence") if "confidence" in header
            else np.ones(n)).astype(np.float32)
    conf_ok = np.nan_to_num(conf, nan=0.0) >= min_confidence
    if "success" in header:
        success = (np.nan_to_num(_column(header, rows, "success"), nan=0.0) > 0.5) & conf_ok
    else:
        success = conf_ok
    lm = None
    if all(f"x_{i}" in header and f"y_{i}" in header for i in range(68)):
        cols = [header.index(f"x_{i}") for i in range(68)] + [header.index(f"y_{i}") for i in range(68)]
        lm = np.array([[_float(r[j]) if j < len(r) else math.nan for j in cols] for r in rows],
                      dtype=np.float32)
    est = float(fps or 0.0)
    if n > 1:  # frames per second of the whole track: robust to timestamps rounded to 1 ms
        steps = (frame[-1] - frame[0]) if np.isfinite(frame[[0, -1]]).all() else n - 1
        est = float(steps if steps > 0 else n - 1) / float(times[-1] - times[0])
    return OpenFaceTrack(times=times, aus=aus, confidence=conf, success=success,
                         frame=np.nan_to_num(frame, nan=-1).astype(np.int64), fps=est,
                         landmarks68=lm, path=p)


def read_au_table(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read a per-image AU table: a name column (``image``, ``file`` or ``name``) + 17 ``AUxx_r``.

    Returns:
        ``(names, aus)``: list of N names and ``(N, 17)`` float32 in AU17 order.

    Example:
        >>> names, aus = read_au_table("ganimation_sample/aus_openface.csv")  # doctest: +SKIP
        >>> len(names), aus.shape                                              # doctest: +SKIP
        (4, (4, 17))
    """
    p = Path(path)
    header, rows = _read_table(p)
    au_idx = _au_columns(header, p)
    key = next((k for k in ("image", "file", "filename", "name", "path") if k in header), None)
    j = header.index(key) if key else 0
    names = [r[j].strip() for r in rows]
    aus = np.array([[_float(r[k]) if k < len(r) else math.nan for k in au_idx] for r in rows],
                   dtype=np.float32).reshape(len(rows), len(au_idx))
    return names, aus


def to_frame_grid(times: np.ndarray, values: np.ndarray, valid: np.ndarray | None, n_frames: int,
                  fps: float = 25.0, *, max_gap_periods: float = 1.5
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Resample a per-frame track onto the grid ``t_n = n / fps``, ``n = 0 .. n_frames-1``.

    Rules (``P`` = the source's median frame period):

    - a grid frame is **masked** when it lies outside the track (before ``times[0] - P/2`` or
      after ``times[-1] + P/2``) or when no valid source row lies within ``max_gap_periods * P``
      (1.5 by default, so one dropped row is bridged but a longer gap is not);
    - otherwise its value is the **linear interpolation** between the valid rows just before
      and after it when those are at most ``2 * max_gap_periods * P`` apart, else the value of
      the nearest valid row (at a track edge or next to a long gap).

    Masked frames hold 0.

    Args:
        times: ``(N,)`` source times in seconds, increasing.
        values: ``(N, D)`` (or ``(N,)``) source values.
        valid: ``(N,)`` bool; ``None`` = rows whose values are all finite.
        n_frames: number of grid frames.
        fps: grid rate (25 = the audio feature rate).
        max_gap_periods: distance, in source periods, beyond which there is no valid sample.

    Returns:
        ``(grid_values (n_frames, D) float32, mask (n_frames,) bool)``.

    Example:
        >>> t = np.arange(30) / 30.0; v = (2 * t + 1)[:, None]
        >>> g, m = to_frame_grid(t, v, None, n_frames=25)
        >>> bool(m[:24].all()), bool(np.allclose(g[:24, 0], 2 * np.arange(24) / 25 + 1))
        (True, True)
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64)
    squeeze = v.ndim == 1
    if squeeze:
        v = v[:, None]
    v = v.reshape(v.shape[0], -1)
    if v.shape[0] != t.shape[0]:
        raise ValueError(f"times ({t.shape[0]}) and values ({v.shape[0]}) differ in length")
    ok = np.isfinite(v).all(axis=1) & np.isfinite(t)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool).reshape(-1)
    d = v.shape[1]
    out = np.zeros((n_frames, d), dtype=np.float32)
    mask = np.zeros(n_frames, dtype=bool)
    if n_frames <= 0 or not ok.any():
        return (out[:, 0] if squeeze else out), mask
    period = float(np.median(np.diff(t))) if t.shape[0] > 1 else 1.0 / fps
    vt, vv = t[ok], v[ok]
    g = np.arange(n_frames, dtype=np.float64) / fps
    inside = (g >= t[0] - 0.5 * period - 1e-9) & (g <= t[-1] + 0.5 * period + 1e-9)
    right = np.searchsorted(vt, g, side="left")  # first valid row with time >= g
    left = right - 1
    has_l = left >= 0
    has_r = right < len(vt)
    li = np.clip(left, 0, len(vt) - 1)
    ri = np.clip(right, 0, len(vt) - 1)
    dl = np.where(has_l, g - vt[li], np.inf)
    dr = np.where(has_r, vt[ri] - g, np.inf)
    near = np.minimum(dl, dr) <= max_gap_periods * period + 1e-9
    mask = inside & near
    span = dl + dr
    interp = has_l & has_r & (span <= 2 * max_gap_periods * period + 1e-9) & (span > 0)
    safe_span = np.where(interp, span, 1.0)
    w = np.where(interp, np.where(interp, dr, 0.0) / safe_span, 0.0)[:, None]
    nearest = np.where(dl <= dr, li, ri)
    res = np.where(interp[:, None], w * vv[li] + (1.0 - w) * vv[ri], vv[nearest])
    out[mask] = res[mask]
    return (out[:, 0] if squeeze else out), mask
