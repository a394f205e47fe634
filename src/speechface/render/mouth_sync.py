"""Mouth sync: the jaw / lips-part track of an ``au17`` animation, made to move like a real mouth.

Speech models predict the mouth of an unseen voice with the right timing but too little
movement (regression to the mean), and a renderer does not give back every condition as the
same mouth opening on every photo (a closed or an open photo mouth, a small face). The default
:func:`speechface.animate` pipeline therefore replaces the predicted ``AU25`` / ``AU26`` by one
mouth track built in three steps (each can be turned off, :class:`MouthSync`):

1. **Driver** (:func:`mouth_track`): the per-utterance z-scores of the speech model's ``AU25``
   and ``AU26`` and, when there is a co-driver, the ARKit model's ``jawOpen`` (the packaged
   ``cnn.blendshapes52-whisper``, run on the same Whisper features), averaged, then smoothed
   over time (a centred Gaussian of 1.5 frames). On the 11 held-out clips this track follows
   the real jawOpen at a mean per-clip r of 0.56 against 0.51 for ``AU26`` alone
   (``docs/model-quality.md``).
2. **Spread** (:func:`normalize_mouth`): the track is moved around its utterance median so that
   ``AU26`` has the median and within-utterance standard deviation real mouths have on the AU
   proxy scale, :data:`MOUTH_TARGET` (the median over the 23 *training* speakers of the
   teacher's per-clip median and standard deviation; ``AU25`` likewise with its own pair),
   values below 0 (a closed mouth) clipped. The spread is at most :data:`MAX_GAIN` times the
   speech model's own ``AU26`` movement, so a track that hardly moves (silence, noise) is not
   blown up to full speech.
3. **Photo** (:func:`jaw_transfer`, :func:`apply_jaw_transfer`): the translator renders the
   photo's face at a ladder of mouth conditions, MediaPipe reads ``jawOpen`` back, and the
   conditions go through the inverse of that (monotone) curve, so that the rendered mouth reads
   back the ``AU26`` asked for (the AU proxy scale is MediaPipe's: ``AU26 = 5 jawOpen``), up
   to the last level of :data:`TRANSFER_LEVELS` (3). This removes dead zones (an open photo
   mouth that only starts to move at ``AU26`` 0.75, a closed one below 0.3) and a small face's
   low gain. The same instrument (MediaPipe) measures the lip sync in
   ``benchmarks/bench_lipsync.py``: a face whose opening it under-reads opens wider on screen
   than the speech asks (the example astronaut). The curve is trusted up to a gain of
   :data:`PHOTO_MAX_GAIN` (3): on faces whose widest rendered opening MediaPipe reads as almost
   closed (a smile showing teeth), the inverse sent about half of the frames to the widest
   opening; with the limit, on 9 development speakers' clips and 16 photos, 1.1 % of frames
   instead of 6.1 %, and the lip-sync r 0.503 instead of 0.495 (limits 1.5 / 2: 0.504 / 0.505,
   but a smaller movement; ``docs/model-quality.md``).

Beside the jaw, the AUs that move the lips up and down (:data:`LIP_AUS`: ``AU10``, ``AU17``,
``AU23``) are slowed to the pace of expression (:func:`steady_lips`, a Gaussian of
:data:`LIP_SMOOTHING` frames): predicted frame by frame, they opened and closed the outline
against the mouth track (``AU17`` = 3 keeps the astronaut's mouth reading nearly closed up to
``AU26`` = 5). And the photo step renders its ladder with the other AUs at the animation's mean
conditions (``jaw_transfer(..., base=)``), so the response is measured in the expression the
frames have. Both were chosen on the development clips (9 clips x 16 photos: r 0.503 -> 0.555,
fidelity 0.86 -> 0.91); measured once afterwards on the 11 held-out clips: 0.499 -> 0.531 with
the four documented photos, 0.470 -> 0.523 with 12 LFW photos (``docs/model-quality.md``).

Example:
    >>> au = np.zeros((50, 17), np.float32)
    >>> au[:, 15] = 0.3 + 0.1 * np.sin(np.arange(50) / 3); au[:, 14] = au[:, 15]
    >>> out = normalize_mouth(au, mouth_track(au))
    >>> median, spread = MOUTH_TARGET["AU26"]
    >>> round(float(np.median(out[:, 15])), 3) == median
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MouthSync", "MOUTH_TARGET", "MAX_GAIN", "TRANSFER_LEVELS", "PHOTO_MAX_GAIN", "LIP_AUS",
           "LIP_SMOOTHING", "mouth_track", "normalize_mouth", "steady_lips", "jaw_transfer",
           "apply_jaw_transfer", "fit_mouth_target"]

_AU25, _AU26 = 14, 15   # positions in the au17 order
#: ``(median, standard deviation)`` within an utterance of the teacher's ``AU25`` and ``AU26``
#: (AU proxy, 0-5) on the training speakers' talking-face clips: per clip (>= 1 s of found
#: face), then the median over each speaker's clips, then the median over the 23 training
#: speakers (524 clips of ``prepared/av_mediapipe``, the speech models' ``val_groups`` left
#: out). Recompute with :func:`fit_mouth_target`.
MOUTH_TARGET: dict[str, tuple[float, float]] = {"AU25": (0.162, 0.404), "AU26": (0.195, 0.347)}
#: The spread step widens the speech model's own ``AU26`` movement at most this many times.
MAX_GAIN = 4.0
#: ``AU26`` levels the photo step renders to measure the renderer's jaw response. The last one
#: is the most the photo step ever asks of the renderer: AU26 = 3 (``jawOpen`` 0.6) is about the
#: widest opening in the talking-face clips (99th percentile of their frames 1.85, maximum
#: 3.3), so a face whose opening MediaPipe under-reads is not driven into a yawn.
TRANSFER_LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
#: The photo step trusts a response curve up to this gain: a face whose widest rendered opening
#: (``AU26`` 3) MediaPipe reads as less than ``3 / PHOTO_MAX_GAIN`` (``AU26`` 1, ``jawOpen``
#: 0.2: a smiling mouth showing teeth, a very small face) has its curve scaled up to that, so
#: the under-read does not push most frames to the widest opening. None: no limit. Chosen on
#: the development speakers' clips (``bench_lipsync.py --clip-set dev --photo-max-gain``).
PHOTO_MAX_GAIN: float | None = 3.0
#: The AUs besides the jaw and the parted lips (``AU25`` / ``AU26``) that move the lips up
#: and down: upper lip raiser, chin raiser (it pushes the lower lip up), lip tightener.
#: :func:`steady_lips` slows them to the pace of expression; the lip corners (``AU12``,
#: ``AU14``, ``AU15``, ``AU20``) keep moving frame by frame.
LIP_AUS: tuple[str, ...] = ("AU10", "AU17", "AU23")
#: Gaussian sigma in frames (12 = 0.48 s) of :func:`steady_lips` in the default mouth sync:
#: on the development clips the smallest within 0.005 of the best lip-sync r (sigma 6 / 12 /
#: 25: r 0.543 / 0.555 / 0.558); a larger sigma also removes more of the frame-level lip
#: movement (the generated smile's r with the real speaker's: 0.09 / 0.03 / -0.01, 0.17 off).
LIP_SMOOTHING: float = 12.0


@dataclass
class MouthSync:
    """Which steps of the mouth sync :func:`speechface.animate` runs (all on by default).

    Args:
        driver: average the speech model's ``AU25`` / ``AU26`` z-scores (and a co-driver's
            ``jawOpen``) into one mouth track (False: the model's own ``AU26`` track).
        co_driver: a ``blendshapes52`` estimator, a model name or folder, None = the packaged
            ``DEFAULT_MODELS["blendshapes52"]`` when ``animate`` uses its own default speech
            model, False = none.
        spread: give the track the real mouths' median and spread (:func:`normalize_mouth`).
        photo: invert the translator's jaw response on the photo (:func:`jaw_transfer`).
        photo_max_gain: the photo step's largest trusted gain (:data:`PHOTO_MAX_GAIN`; None:
            the response curve as read, :func:`apply_jaw_transfer`).
        smoothing: centred Gaussian smoothing of the mouth track, sigma in frames (0 = off;
            :func:`speechface.spaces.transforms.smooth_conditions`), before the spread step; 1.5 frames
            (60 ms) removes frame-to-frame jitter and keeps syllable-rate motion.
        lips: sigma in frames with which :func:`steady_lips` smooths the AUs that move the lips
            up and down (:data:`LIP_AUS`), so that the mouth opens and closes with the mouth track alone
            (:data:`LIP_SMOOTHING`; 0 = off: they move frame by frame as predicted).

    Example:
        >>> MouthSync(photo=False).spread
        True
    """

    driver: bool = True
    co_driver: Any = None
    spread: bool = True
    photo: bool = True
    smoothing: float = 1.5
    photo_max_gain: float | None = PHOTO_MAX_GAIN
    lips: float = LIP_SMOOTHING


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    s = x.std()
    return (x - x.mean()) / s if s > 1e-8 else np.zeros_like(x)


def mouth_track(au: np.ndarray, jaw: np.ndarray | None = None) -> np.ndarray:
    """One mouth-opening track: the mean of the per-utterance z-scores of ``AU25``, ``AU26``
    and (if given) a co-driver's ``jawOpen``.

    Args:
        au: ``(frames, 17)`` AU proxy intensities of one utterance.
        jaw: ``(frames,)`` a second model's jaw opening (any scale), or None.

    Returns:
        ``(frames,)`` float64 with mean 0 (unit standard deviation for correlated inputs; 0
        throughout when nothing moves).

    Example:
        >>> au = np.zeros((4, 17)); au[:, 14] = au[:, 15] = [0, 1, 2, 1]
        >>> mouth_track(au).round(2).tolist()
        [-1.41, 0.0, 1.41, 0.0]
    """
    a = np.asarray(au, np.float64)
    if a.ndim != 2 or a.shape[1] != 17:
        raise ValueError(f"mouth_track needs (frames, 17) AUs, got {a.shape}")
    parts = [_z(a[:, _AU25]), _z(a[:, _AU26])]
    if jaw is not None:
        j = np.asarray(jaw, np.float64).reshape(-1)
        if len(j) != len(a):
            raise ValueError(f"co-driver jaw track has {len(j)} frames, the AUs {len(a)}")
        parts.append(_z(j))
    return np.mean(parts, axis=0)


def normalize_mouth(au: np.ndarray, track: np.ndarray | None = None, *,
                    target: dict[str, tuple[float, float]] | None = None,
                    max_gain: float = MAX_GAIN) -> np.ndarray:
    """Replace ``AU25`` / ``AU26`` by ``track`` moved to real mouths' median and spread.

    With ``u`` the track centred at its median and scaled to unit standard deviation, ``s``
    the standard deviation of the input ``AU26`` over the utterance and ``(m, d)`` the target's
    ``AU26`` median and spread, the output is ``AU26 = clip(m + c u, 0, 5)`` with ``c`` chosen
    so that its standard deviation is ``min(d, max_gain * s)`` (the values clipped at 0, a
    closed mouth, count; ``c`` at most 4 times that spread); ``AU25`` the same with its own
    target pair and the same share of its spread. A speech track that moves normally therefore
    gets exactly the median ``m`` and the spread ``d``; one that hardly moves at most
    ``max_gain`` times its own spread.

    Args:
        au: ``(frames, 17)`` AU proxy intensities (one utterance).
        track: ``(frames,)`` the mouth track (:func:`mouth_track`); None = ``AU26`` itself.
        target: ``{"AU25": (median, std), "AU26": (median, std)}`` (default
            :data:`MOUTH_TARGET`).
        max_gain: the largest widening of the input's own ``AU26`` movement (> 0).

    Returns:
        ``(frames, 17)`` float32; the other 15 AUs unchanged.

    Example:
        >>> au = np.zeros((100, 17), np.float32); au[:, 15] = np.linspace(0.2, 0.4, 100)
        >>> out = normalize_mouth(au)
        >>> round(float(np.median(out[:, 15])), 3), round(float(out[:, 15].std()), 3)
        (0.195, 0.233)
    """
    a = np.array(au, dtype=np.float32, copy=True)
    if a.ndim != 2 or a.shape[1] != 17:
        raise ValueError(f"normalize_mouth needs (frames, 17) AUs, got {a.shape}")
    if not (np.isfinite(max_gain) and max_gain > 0):
        raise ValueError(f"max_gain must be a finite number > 0, got {max_gain!r}")
    tgt = dict(MOUTH_TARGET if target is None else target)
    t = np.asarray(a[:, _AU26] if track is None else track, np.float64).reshape(-1)
    if len(t) != len(a):
        raise ValueError(f"mouth track has {len(t)} frames, the AUs {len(a)}")
    if len(a) < 2 or t.std() < 1e-8:
        return a
    u = (t - np.median(t)) / t.std()
    own = float(a[:, _AU26].std())
    _, d26 = tgt["AU26"]
    k = min(1.0, max_gain * own / d26) if d26 > 0 else 0.0   # share of the target spread
    for col, name in ((_AU25, "AU25"), (_AU26, "AU26")):
        med, spread = tgt[name]
        a[:, col] = _spread_to(u, med, k * spread)
    return a


def steady_lips(au: np.ndarray, sigma: float = LIP_SMOOTHING) -> np.ndarray:
    """Slow the AUs that move the lips up and down (:data:`LIP_AUS`) to the pace of expression.

    On a photo, ``AU10`` (upper lip raiser), ``AU17`` (chin raiser) and ``AU23`` (lip
    tightener) each open or close the mouth's outline: moving frame by frame as a speech model
    predicts them (per-clip r about 0.3 with the real speaker's on the development speakers),
    they narrow or widen the opening the jaw track asked for between two syllables. Smoothed
    with a centred Gaussian of ``sigma`` frames (normalised at the edges,
    :func:`speechface.spaces.transforms.smooth_conditions`), they keep the utterance's level and
    its changes over seconds, and the opening follows the mouth track (``AU25`` / ``AU26``).
    The lip corners and the upper face are left as they are.

    Args:
        au: ``(frames, 17)`` AU intensities.
        sigma: Gaussian standard deviation in frames (>= 0; 0 returns a copy).

    Returns:
        ``(frames, 17)`` float32; only the :data:`LIP_AUS` columns change.

    Example:
        >>> au = np.zeros((100, 17), np.float32); au[::2, 11] = 2.0     # AU17 flickering
        >>> out = steady_lips(au)
        >>> round(float(out[:, 11].std()), 3) < 0.05, round(float(out[:, 11].mean()), 1)
        (True, 1.0)
    """
    from ..spaces.space import get_space
    from ..spaces.transforms import smooth_conditions

    a = np.array(au, dtype=np.float32, copy=True)
    if a.ndim != 2 or a.shape[1] != 17:
        raise ValueError(f"steady_lips needs (frames, 17) AUs, got {a.shape}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"steady_lips: sigma (MouthSync.lips) must be a finite number of frames "
                         f">= 0, got {sigma!r}")
    labels = list(get_space("au17").labels)
    cols = [labels.index(name) for name in LIP_AUS]
    a[:, cols] = smooth_conditions(a[:, cols], float(sigma))
    return a


def _spread_to(u: np.ndarray, median: float, std: float) -> np.ndarray:
    """``clip(median + c u, 0, 5)`` with ``c`` chosen (bisection) so that its standard
    deviation is ``std``: the values clipped at a closed mouth do not take spread away."""
    def out(c: float) -> np.ndarray:
        return np.clip(median + c * u, 0.0, 5.0)

    if std <= 0:
        return out(0.0)
    lo, hi = 0.0, 4.0 * std        # at most 4x the unclipped scale
    if out(hi).std() <= std:
        return out(hi)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if out(mid).std() < std else (lo, mid)
    return out(0.5 * (lo + hi))


def jaw_transfer(translator: Any, face: np.ndarray,
                 levels: tuple[float, ...] = TRANSFER_LEVELS, *,
                 base: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The translator's jaw response on one face crop: ``(levels, read)``.

    Renders ``face`` with ``AU25 = AU26 = level`` (the other AUs at ``base``) for each level
    and reads ``AU26 = 5 jawOpen`` back with MediaPipe (image mode). A level where MediaPipe
    finds no face reads as the previous level's value.

    Args:
        translator: an ``au17`` :class:`~speechface.render.translators.Translator`.
        face: ``(S, S, 3)`` uint8 face crop as the translator receives it.
        levels: increasing ``AU26`` levels (0-5).
        base: ``(17,)`` the other AUs while the jaw opens: :func:`speechface.animate` passes
            the animation's mean conditions, so that the response is measured in the
            expression the frames have (a smile or pressed lips change how far a given
            ``AU26`` opens the mouth); None = all 0 (the neutral face).

    Returns:
        ``(L,)`` levels and ``(L,)`` the AU26 read back, float64.
    """
    from ..teachers.mediapipe import BLENDSHAPE_NAMES, MediaPipeTeacher
    from .face import native_logs_hidden

    lv = np.asarray(levels, np.float64)
    if lv.ndim != 1 or len(lv) < 2 or (np.diff(lv) <= 0).any():
        raise ValueError(f"levels must be at least 2 increasing numbers, got {levels!r}")
    cond = np.zeros((len(lv), 17), np.float32)
    if base is not None:
        b = np.asarray(base, np.float32).reshape(-1)
        if b.shape != (17,) or not np.isfinite(b).all():
            raise ValueError(f"base must be 17 finite AU values, got shape {b.shape}")
        cond[:] = b
    cond[:, _AU25] = lv
    cond[:, _AU26] = lv
    faces = np.asarray(translator.translate(face[None], cond))
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    read = []
    with native_logs_hidden(), MediaPipeTeacher(running_mode="image") as teacher:
        for f in faces:
            obs = teacher.observe(np.ascontiguousarray(f))
            read.append(5.0 * float(obs.blendshapes[jaw]) if obs.found else
                        (read[-1] if read else 0.0))
    return lv, np.asarray(read, np.float64)


def apply_jaw_transfer(au: np.ndarray, levels: np.ndarray, read: np.ndarray, *,
                       max_gain: float | None = None) -> np.ndarray:
    """Map wanted ``AU26`` values through the inverse of a jaw response curve.

    ``read`` is made non-decreasing (running maximum); each frame's ``AU26`` becomes the level
    whose response is that value (linear interpolation; where the response stays flat, the
    lowest such level, except at the bottom: a dead zone maps onto its end, where the response
    starts to rise; above the largest response: the level where it is first reached).
    ``AU25`` moves by the same amount, so the lips part as much beyond the jaw as before.

    Args:
        au: ``(frames, 17)`` AU proxy intensities.
        levels: ``(L,)`` increasing AU26 levels of a curve from :func:`jaw_transfer`.
        read: ``(L,)`` the AU26 read back at each level.
        max_gain: if the largest response is below ``levels[-1] / max_gain``, the curve's rise
            above its first value is scaled up to reach it (the photo step then widens the
            wanted opening at most about ``max_gain`` times); None: the curve as read.

    Returns:
        ``(frames, 17)`` float32.

    Example:
        >>> au = np.zeros((2, 17), np.float32); au[:, 15] = [0.5, 1.0]
        >>> out = apply_jaw_transfer(au, np.array([0., 1., 2.]), np.array([0., 0.5, 1.]))
        >>> out[:, 15].tolist()
        [1.0, 2.0]
    """
    a = np.array(au, dtype=np.float32, copy=True)
    lv = np.asarray(levels, np.float64)
    rd = np.maximum.accumulate(np.asarray(read, np.float64))
    if lv.shape != rd.shape or len(lv) < 2:
        raise ValueError(f"levels and read must be equal-length curves, got {lv.shape}, "
                         f"{rd.shape}")
    if max_gain is not None:
        if not (math.isfinite(max_gain) and max_gain > 0):
            raise ValueError(f"max_gain must be a positive number or None, got {max_gain!r}")
        need = lv[-1] / max_gain
        if rd[0] < need and rd[-1] < need and rd[-1] - rd[0] > 1e-6:
            rd = rd[0] + (rd - rd[0]) * (need - rd[0]) / (rd[-1] - rd[0])
    top = int(np.argmax(rd >= rd[-1]))           # first level reaching the largest response
    lv, rd = lv[:top + 1], rd[:top + 1]
    if len(lv) < 2 or rd[-1] - rd[0] < 1e-6:      # the renderer does not move the jaw
        return a
    # strictly increasing for interp: the first level of each flat stretch, except that the
    # first stretch (a dead zone) is represented by its end, where the response starts to rise
    floor = int(np.argmax(rd > rd[0] + 1e-9)) - 1
    keep = np.concatenate([[True], np.diff(rd) > 1e-9])
    keep[1:floor + 1] = False
    xs, ys = rd[keep], lv[keep]
    ys[0] = lv[floor]
    new = np.interp(a[:, _AU26].astype(np.float64), xs, ys)
    shift = new - a[:, _AU26]
    a[:, _AU26] = new
    a[:, _AU25] = np.clip(a[:, _AU25] + shift, 0.0, 5.0)
    return a


def fit_mouth_target(clips: Any, *, min_frames: int = 25) -> dict[str, tuple[float, float]]:
    """:data:`MOUTH_TARGET` from teacher tracks: per clip the median and standard deviation of
    ``AU25`` / ``AU26`` over its found frames, the median over each speaker's clips, then the
    median over speakers.

    Args:
        clips: iterable of ``(speaker, au)`` with ``au`` the ``(frames, 17)`` teacher AUs of
            one clip's found frames (training speakers only).
        min_frames: clips with fewer frames are skipped.

    Returns:
        ``{"AU25": (median, std), "AU26": (median, std)}`` rounded to 3 decimals.

    Example:
        >>> au = np.zeros((30, 17)); au[:, 15] = np.arange(30) % 2; au[:, 14] = au[:, 15]
        >>> fit_mouth_target([("a", au)])["AU26"]
        (0.5, 0.5)
    """
    per: dict[str, list[list[float]]] = {}
    for speaker, au in clips:
        a = np.asarray(au, np.float64)
        if len(a) < min_frames:
            continue
        per.setdefault(str(speaker), []).append(
            [np.median(a[:, _AU25]), a[:, _AU25].std(), np.median(a[:, _AU26]), a[:, _AU26].std()])
    if not per:
        raise ValueError(f"no clip with at least {min_frames} frames")
    s = np.median(np.stack([np.median(np.array(v), 0) for v in per.values()]), 0)
    return {"AU25": (round(float(s[0]), 3), round(float(s[1]), 3)),
            "AU26": (round(float(s[2]), 3), round(float(s[3]), 3))}
