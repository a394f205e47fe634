"""MediaPipe FaceLandmarker as a *teacher*: per-frame face targets from real video.

The FaceLandmarker (Google, Apache-2.0) gives, for every face in an image, 478 3-D mesh landmarks
and 52 ARKit-style blendshape scores in ``[0, 1]``. speechface turns these into training targets:

- :func:`blendshapes_to_au17`: a documented **proxy** for the 17 OpenFace AU intensities (0-5).
  It is *not* OpenFace; metadata records it as :data:`PROXY_NAME`.
- :func:`landmarks68_from_478`: the iBUG 68-point subset of the mesh, normalised to the face box
  (the ``landmarks68`` space).

Needs the ``[face]`` extra (``pip install speechface[face]``); the model bundle is found or
downloaded by :func:`resolve_face_landmarker`.

Example:
    >>> from speechface.teachers import MediaPipeTeacher, blendshapes_to_au17   # doctest: +SKIP
    >>> from speechface.render.video import read_video                                  # doctest: +SKIP
    >>> with MediaPipeTeacher() as teacher:                                      # doctest: +SKIP
    ...     track = teacher.observe_video(read_video("talk.mp4"))
    >>> blendshapes_to_au17(track.blendshapes).shape                             # doctest: +SKIP
    (75, 17)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ImageError, ModelError, SpeechfaceError
from ..spaces.space import AU_NAMES

__all__ = [
    "MediaPipeTeacher",
    "FaceObservation",
    "TeacherTrack",
    "BLENDSHAPE_NAMES",
    "AU_FROM_BLENDSHAPES",
    "PROXY_NAME",
    "MP_TO_IBUG68",
    "FACE_LANDMARKER_URL",
    "blendshapes_to_au17",
    "au17_to_blendshapes",
    "blendshape_au_matrix",
    "landmarks68_from_478",
    "stable_face_boxes",
    "resolve_face_landmarker",
]

#: Official download address of the model bundle (float16, version 1).
FACE_LANDMARKER_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                       "face_landmarker/float16/1/face_landmarker.task")
_MODEL_FILE = "face_landmarker.task"

#: The 52 blendshape categories in MediaPipe's output order (index = position in the array).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)

_BS_INDEX = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}

#: Name recorded in shard metadata for targets made with :func:`blendshapes_to_au17`.
PROXY_NAME = "mediapipe_blendshape_proxy_v1"

#: AU -> weighted blendshapes; ``AU = clip(5 * sum(w * score), 0, 5)``. See
#: :func:`blendshapes_to_au17` for the rationale of each row.
AU_FROM_BLENDSHAPES: dict[str, list[tuple[str, float]]] = {
    "AU01": [("browInnerUp", 1.0)],
    "AU02": [("browOuterUpLeft", 0.5), ("browOuterUpRight", 0.5)],
    "AU04": [("browDownLeft", 0.5), ("browDownRight", 0.5)],
    "AU05": [("eyeWideLeft", 0.5), ("eyeWideRight", 0.5)],
    "AU06": [("cheekSquintLeft", 0.5), ("cheekSquintRight", 0.5)],
    "AU07": [("eyeSquintLeft", 0.5), ("eyeSquintRight", 0.5)],
    "AU09": [("noseSneerLeft", 0.5), ("noseSneerRight", 0.5)],
    "AU10": [("mouthUpperUpLeft", 0.5), ("mouthUpperUpRight", 0.5)],
    "AU12": [("mouthSmileLeft", 0.5), ("mouthSmileRight", 0.5)],
    "AU14": [("mouthDimpleLeft", 0.5), ("mouthDimpleRight", 0.5)],
    "AU15": [("mouthFrownLeft", 0.5), ("mouthFrownRight", 0.5)],
    "AU17": [("mouthShrugLower", 1.0)],
    "AU20": [("mouthStretchLeft", 0.5), ("mouthStretchRight", 0.5)],
    "AU23": [("mouthPressLeft", 0.5), ("mouthPressRight", 0.5)],
    "AU25": [("jawOpen", 1.0), ("mouthClose", -1.0),
             ("mouthLowerDownLeft", 0.25), ("mouthLowerDownRight", 0.25)],
    "AU26": [("jawOpen", 1.0)],
    "AU45": [("eyeBlinkLeft", 0.5), ("eyeBlinkRight", 0.5)],
}

#: MediaPipe mesh vertex for each of the 68 iBUG/dlib/OpenFace points (subject's right = image
#: left, as iBUG): jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils
#: 31-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67. This is the
#: single-vertex correspondence in wide use (e.g. LatentSync 1.5's ``LM68_FROM_MP478`` and many
#: face-mesh demos). The mesh has no points exactly on the iBUG jaw contour's ends, so 0 and 16
#: sit a little higher (temple level) than dlib's; treat the jaw as approximate.
MP_TO_IBUG68: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107,  # right brow
    336, 296, 334, 293, 301,  # left brow
    168, 197, 5, 4,  # nose bridge
    75, 97, 2, 326, 305,  # nostrils
    33, 160, 158, 133, 153, 144,  # right eye
    362, 385, 387, 263, 373, 380,  # left eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)

# rigid points (eye corners/lids, nose bridge) used to anchor a stable face box
_RIGID68 = tuple(range(27, 31)) + tuple(range(36, 48))


def blendshape_au_matrix() -> np.ndarray:
    """The proxy table as a ``(52, 17)`` float32 matrix ``W`` with ``AU = clip(5 * bs @ W, 0, 5)``.

    Example:
        >>> blendshape_au_matrix().shape
        (52, 17)
    """
    w = np.zeros((len(BLENDSHAPE_NAMES), len(AU_NAMES)), dtype=np.float32)
    for j, au in enumerate(AU_NAMES):
        for name, weight in AU_FROM_BLENDSHAPES[au]:
            w[BLENDSHAPE_NAMES.index(name), j] += weight
    return w


def blendshapes_to_au17(bs: Any) -> Any:
    """Map MediaPipe blendshape scores to a **proxy** of the 17 OpenFace AU intensities.

    ``AU = clip(5 * sum_k w_k * score_k, 0, 5)`` with the weights of
    :data:`AU_FROM_BLENDSHAPES` (recorded as :data:`PROXY_NAME`). This is **not** OpenFace: the
    scale of each blendshape differs from OpenFace's intensity scale, so per-AU calibration
    against real OpenFace tracks is a separate step. The rows follow the FACS definitions that
    ARKit's blendshapes were designed from:

    ==== ======================== ==========================================================
    AU   blendshapes (weight)     why
    ==== ======================== ==========================================================
    01   browInnerUp (1)          inner brow raiser
    02   browOuterUp L/R (.5)     outer brow raiser
    04   browDown L/R (.5)        brow lowerer
    05   eyeWide L/R (.5)         upper lid raiser widens the eye
    06   cheekSquint L/R (.5)     cheek raiser pushes the lower lid/cheek up
    07   eyeSquint L/R (.5)       lid tightener narrows the eye
    09   noseSneer L/R (.5)       nose wrinkler
    10   mouthUpperUp L/R (.5)    upper lip raiser
    12   mouthSmile L/R (.5)      lip corner puller
    14   mouthDimple L/R (.5)     dimpler pulls the corners inward/back
    15   mouthFrown L/R (.5)      lip corner depressor
    17   mouthShrugLower (1)      chin raiser pushes the lower lip up
    20   mouthStretch L/R (.5)    lip stretcher pulls the corners sideways
    23   mouthPress L/R (.5)      lip tightener narrows and presses the red of the lips;
                                  mouthPucker is AU18 (lip pucker), so it is not used
    25   jawOpen (1) - mouthClose lips part: jaw opening with the lips *not* held closed
         (1) + mouthLowerDown     (``mouthClose`` = lips closed while the jaw is open), plus
         L/R (.25)                a lowered lower lip (parts the lips without much jaw)
    26   jawOpen (1)              jaw drop
    45   eyeBlink L/R (.5)        blink
    ==== ======================== ==========================================================

    Args:
        bs: ``(..., 52)`` scores in :data:`BLENDSHAPE_NAMES` order (numpy array or torch tensor).

    Returns:
        ``(..., 17)`` AU intensities in ``[0, 5]`` in AU17 order, same type as ``bs``
        (float32 for numpy).

    Example:
        >>> import numpy as np
        >>> bs = np.zeros(52, np.float32); bs[BLENDSHAPE_NAMES.index("jawOpen")] = 0.4
        >>> au = blendshapes_to_au17(bs); float(au[15])   # AU26
        2.0
    """
    w = blendshape_au_matrix()
    if hasattr(bs, "detach"):  # torch tensor
        import torch

        wt = torch.from_numpy(w).to(device=bs.device, dtype=bs.dtype if bs.is_floating_point()
                                    else torch.float32)
        if bs.shape[-1] != w.shape[0]:
            raise ValueError(f"blendshapes need a last dimension of 52, got {tuple(bs.shape)}")
        return (5.0 * (bs.to(wt.dtype) @ wt)).clamp(0.0, 5.0)
    arr = np.asarray(bs, dtype=np.float32)
    if arr.shape[-1] != w.shape[0]:
        raise ValueError(f"blendshapes need a last dimension of 52, got {arr.shape}")
    return np.clip(5.0 * (arr @ w), 0.0, 5.0).astype(np.float32)


#: The inverse of :data:`AU_FROM_BLENDSHAPES` used by :func:`au17_to_blendshapes`: AU -> the
#: blendshapes that carry it, each set to ``AU / 5`` (both sides of a bilateral pair get the same
#: value). AU25 and AU26 are solved together there (see its docstring).
BLENDSHAPES_FROM_AU: dict[str, tuple[str, ...]] = {
    au: tuple(name for name, w in rows if w > 0)
    for au, rows in AU_FROM_BLENDSHAPES.items() if au not in ("AU25", "AU26")
}


def au17_to_blendshapes(au: Any) -> Any:
    """The inverse of :func:`blendshapes_to_au17`: AU17 intensities -> MediaPipe blendshape scores.

    A documented per-AU rule (not a fit), so that an AU model can drive a blendshape rig:

    - every AU except AU25/AU26 sets the blendshapes of its row in :data:`AU_FROM_BLENDSHAPES`
      to ``AU / 5`` (a bilateral pair gets the same value on both sides; AU01 -> browInnerUp,
      AU17 -> mouthShrugLower);
    - AU26 (jaw drop) sets ``jawOpen = AU26 / 5``;
    - AU25 (lips part) is what is left after the jaw: ``r = (AU25 - AU26) / 5``; ``r > 0`` (lips
      apart more than the jaw explains) lowers the lower lip, ``mouthLowerDownLeft/Right =
      min(2 r, 1)``; ``r < 0`` (jaw open, lips held together) sets ``mouthClose = -r``;
    - every other blendshape (eye gaze, jaw sideways, funnel, pucker, rolls, cheekPuff,
      ``_neutral``) is 0: no AU of the 17 carries it.

    ``blendshapes_to_au17(au17_to_blendshapes(au)) == au`` for every ``au`` in ``[0, 5]`` with
    ``AU25 - AU26 <= 2.5`` (beyond that the lower lip saturates and AU25 comes back as
    ``AU26 + 2.5``). The other direction loses what the AUs do not hold: left/right asymmetry
    (pairs come back as their mean), gaze, and the blendshapes listed above.

    Args:
        au: ``(..., 17)`` AU intensities in AU17 order (numpy array, list or torch tensor); values
            are clipped to ``[0, 5]`` first.

    Returns:
        ``(..., 52)`` float32 scores in ``[0, 1]`` in :data:`BLENDSHAPE_NAMES` order, of the
        input's type (numpy for numpy/lists; a tensor on the input's device for tensors).

    Example:
        >>> au = np.zeros(17, np.float32); au[8] = 2.5            # AU12 = 2.5
        >>> bs = au17_to_blendshapes(au)
        >>> float(bs[BLENDSHAPE_NAMES.index("mouthSmileLeft")])
        0.5
        >>> float(blendshapes_to_au17(bs)[8])
        2.5
    """
    if hasattr(au, "detach"):  # torch tensor: compute in numpy, hand back a tensor
        import torch

        out = au17_to_blendshapes(au.detach().cpu().numpy())
        return torch.from_numpy(out).to(au.device)
    a = np.asarray(au, dtype=np.float32)
    if a.shape[-1:] != (len(AU_NAMES),):
        raise ValueError(f"AU intensities need a last dimension of 17, got {a.shape}")
    v = np.clip(a, 0.0, 5.0) / 5.0
    aus = list(AU_NAMES)
    bs = np.zeros(a.shape[:-1] + (len(BLENDSHAPE_NAMES),), np.float32)
    for au_name, names in BLENDSHAPES_FROM_AU.items():
        for name in names:
            bs[..., _BS_INDEX[name]] = v[..., aus.index(au_name)]
    v25, v26 = v[..., aus.index("AU25")], v[..., aus.index("AU26")]
    r = v25 - v26
    bs[..., _BS_INDEX["jawOpen"]] = v26
    lower = np.clip(2.0 * r, 0.0, 1.0)
    bs[..., _BS_INDEX["mouthLowerDownLeft"]] = lower
    bs[..., _BS_INDEX["mouthLowerDownRight"]] = lower
    bs[..., _BS_INDEX["mouthClose"]] = np.clip(-r, 0.0, 1.0)
    return bs


def stable_face_boxes(xy68: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Face boxes for a clip that follow the head but not the expression.

    A box from each frame's landmark extent shrinks and grows as the jaw opens, which would hide
    the jaw drop after normalisation. Here the box of frame ``t`` is anchored on rigid points
    (eye corners/lids and the nose bridge): ``box_t = anchor_t + median offset``, with the clip's
    median extent width and height. It follows translation of the head, keeps mouth motion.

    Args:
        xy68: ``(N, 68, 2)`` landmark coordinates (any unit) for the frames of one clip.
        valid: ``(N,)`` bool, frames to use for the medians (default: all finite frames).

    Returns:
        ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in the unit of ``xy68``.

    Example:
        >>> xy = np.random.rand(10, 68, 2)
        >>> stable_face_boxes(xy).shape
        (10, 4)
    """
    xy = np.asarray(xy68, dtype=np.float64)
    finite = np.isfinite(xy).all(axis=(1, 2))
    use = finite if valid is None else (finite & np.asarray(valid, bool))
    anchor = xy[:, _RIGID68, :].mean(axis=1)  # (N, 2)
    lo = xy.min(axis=1)
    hi = xy.max(axis=1)
    if not use.any():
        return np.concatenate([lo, hi], axis=1)
    offset = np.median((lo - anchor)[use], axis=0)
    size = np.median((hi - lo)[use], axis=0)
    start = anchor + offset
    return np.concatenate([start, start + size], axis=1)


def landmarks68_from_478(lm478: np.ndarray, box: Any = None) -> np.ndarray:
    """The 68 iBUG points of a MediaPipe mesh, normalised to a face box (``landmarks68`` space).

    Args:
        lm478: ``(..., 478, 2 or 3)`` mesh landmarks (MediaPipe's normalised image coordinates,
            or pixels); only x and y are used.
        box: the face box ``(..., 4)`` ``(x0, y0, x1, y1)`` in the same unit as ``lm478``;
            ``None`` = each frame's extent of the 68 points (values exactly span 0-1);
            ``"stable"`` = :func:`stable_face_boxes` over the leading axis (a clip, ``(N, 478,
            2|3)``), which keeps jaw motion visible.

    Returns:
        ``(..., 136)`` float32 ``x_0..x_67, y_0..y_67`` with ``(x - x0) / (x1 - x0)`` and
        ``(y - y0) / (y1 - y0)``, about 0-1.

    Example:
        >>> lm = np.random.rand(478, 3)
        >>> out = landmarks68_from_478(lm); out.shape, float(out[:68].min()), float(out[:68].max())
        ((136,), 0.0, 1.0)
    """
    lm = np.asarray(lm478, dtype=np.float64)
    if lm.ndim < 2 or lm.shape[-2] != 478 or lm.shape[-1] not in (2, 3):
        raise ValueError(f"landmarks need shape (..., 478, 2|3), got {lm.shape}")
    xy = lm[..., list(MP_TO_IBUG68), :2]  # (..., 68, 2)
    if isinstance(box, str):
        if box != "stable" or xy.ndim != 3:
            raise ValueError("box='stable' needs landmarks of one clip, shape (N, 478, 2|3)")
        b = stable_face_boxes(xy)
    elif box is None:
        b = np.concatenate([xy.min(axis=-2), xy.max(axis=-2)], axis=-1)
    else:
        b = np.broadcast_to(np.asarray(box, dtype=np.float64), xy.shape[:-2] + (4,))
    lo = b[..., None, 0:2]
    size = np.maximum(b[..., None, 2:4] - lo, 1e-9)
    n = (xy - lo) / size  # (..., 68, 2)
    return np.concatenate([n[..., 0], n[..., 1]], axis=-1).astype(np.float32)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "speechface"


def resolve_face_landmarker(model_path: str | os.PathLike[str] | None = None, *,
                            download: bool = True) -> Path:
    """Find (or download once) the FaceLandmarker model bundle ``face_landmarker.task``.

    Order: ``model_path`` -> env ``SPEECHFACE_FACE_LANDMARKER`` ->
    ``$SPEECHFACE_SHARED/models/face_landmarker.task`` (default ``../shared``, the development
    data folder beside a checkout) -> the user cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``)``/speechface/face_landmarker.task`` -> download from
    :data:`FACE_LANDMARKER_URL` into that cache (atomically: a temporary file renamed on success).

    Raises:
        ModelError: an explicit path or the env variable names a missing file, or the model is
            not cached and cannot be downloaded (offline).

    Example:
        >>> resolve_face_landmarker()   # doctest: +SKIP
        PosixPath('/home/me/.cache/speechface/face_landmarker.task')
    """
    for value, what in ((model_path, "model_path"),
                        (os.environ.get("SPEECHFACE_FACE_LANDMARKER"), "SPEECHFACE_FACE_LANDMARKER")):
        if value:
            p = Path(value).expanduser()
            if not p.is_file():
                raise ModelError(f"{p}: FaceLandmarker model not found (from {what})")
            return p
    # the project's development data convention (DATA.md): SPEECHFACE_SHARED, default ../shared
    shared = os.environ.get("SPEECHFACE_SHARED", os.path.join("..", "shared"))
    if shared:
        p = Path(shared) / "models" / _MODEL_FILE
        if p.is_file():
            return p
    cached = _cache_dir() / _MODEL_FILE
    if cached.is_file():
        return cached
    if not download:
        raise ModelError(f"FaceLandmarker model not found in {cached} (download disabled)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{_MODEL_FILE}.", suffix=".tmp", dir=cached.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(FACE_LANDMARKER_URL, timeout=60) as r:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        if os.path.getsize(tmp) < 1000:
            raise ModelError(f"download of {FACE_LANDMARKER_URL} gave a truncated file")
        os.replace(tmp, cached)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise ModelError(
            f"cannot download the FaceLandmarker model from {FACE_LANDMARKER_URL} ({e}). "
            f"Download it by hand to {cached}, or pass model_path (CLI: --model) or set "
            "SPEECHFACE_FACE_LANDMARKER.") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return cached


_QUIET = {"on": True}


def quiet_native_logs(on: bool = True) -> None:
    """Hide (default) or show the C++ log lines MediaPipe / TFLite write to stderr when a face
    model starts (``speechface animate --verbose`` shows them).

    Example:
        >>> quiet_native_logs(True)
    """
    _QUIET["on"] = bool(on)
    if on:  # read by absl / glog when MediaPipe is first imported
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_logs_hidden() -> Iterator[None]:
    """Silence C++ log lines (absl/TFLite) written to file descriptor 2 while MediaPipe starts
    (unless :func:`quiet_native_logs` was turned off)."""
    if not _QUIET["on"]:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class FaceObservation:
    """What the teacher sees in one image (the largest face when there are several).

    Attributes:
        found: whether a face was found (otherwise the arrays are zeros).
        blendshapes: ``(52,)`` float32 scores 0-1 in :data:`BLENDSHAPE_NAMES` order.
        landmarks: ``(478, 3)`` float32 mesh points; x, y in 0-1 image coordinates (x / width,
            y / height), z relative depth.
        box: ``(4,)`` float32 ``(x0, y0, x1, y1)`` in pixels: the extent of the landmarks.
    """

    found: bool
    blendshapes: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray

    @classmethod
    def empty(cls) -> FaceObservation:
        """An observation with no face."""
        return cls(False, np.zeros(52, np.float32), np.zeros((478, 3), np.float32),
                   np.zeros(4, np.float32))

    @property
    def au17(self) -> np.ndarray:
        """``(17,)`` proxy AU intensities (:func:`blendshapes_to_au17`)."""
        return blendshapes_to_au17(self.blendshapes)


@dataclass
class TeacherTrack:
    """Teacher outputs for every frame of a video.

    Attributes:
        times: ``(N,)`` frame times in seconds (the video's clock).
        found: ``(N,)`` bool.
        blendshapes: ``(N, 52)`` float32.
        landmarks478: ``(N, 478, 3)`` float32 (normalised image coordinates).
        boxes: ``(N, 4)`` float32 pixels.
    """

    times: np.ndarray
    found: np.ndarray
    blendshapes: np.ndarray
    landmarks478: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.found.shape[0])

    @property
    def au17(self) -> np.ndarray:
        """``(N, 17)`` proxy AU intensities (zeros where no face)."""
        return blendshapes_to_au17(self.blendshapes)

    def landmarks68(self, box: Any = "stable") -> np.ndarray:
        """``(N, 136)`` landmarks68 (see :func:`landmarks68_from_478`)."""
        if box == "stable":
            xy = self.landmarks478[:, list(MP_TO_IBUG68), :2].astype(np.float64)
            b = stable_face_boxes(xy, self.found) if len(self) else np.zeros((0, 4))
            return landmarks68_from_478(self.landmarks478, b)
        return landmarks68_from_478(self.landmarks478, box)


class MediaPipeTeacher:
    """MediaPipe FaceLandmarker wrapper: blendshapes, 478 landmarks and a box per image.

    Args:
        model_path: the ``face_landmarker.task`` bundle (default: :func:`resolve_face_landmarker`).
        min_confidence: minimum face detection, presence and tracking confidence.
        running_mode: ``"video"`` (tracks across frames; needs increasing timestamps, which
            :meth:`observe_video` supplies; a fresh graph is made per video) or ``"image"``
            (every image independent).
        num_faces: faces to detect; the largest one is reported.

    Example:
        >>> with MediaPipeTeacher(running_mode="image") as t:      # doctest: +SKIP
        ...     obs = t.observe(np.asarray(Image.open("face.jpg").convert("RGB")))
        >>> obs.found, obs.blendshapes.shape, obs.landmarks.shape  # doctest: +SKIP
        (True, (52,), (478, 3))
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *,
                 min_confidence: float = 0.5, running_mode: str = "video",
                 num_faces: int = 1) -> None:
        if running_mode not in ("video", "image"):
            raise ValueError(f"running_mode must be 'video' or 'image', got {running_mode!r}")
        self.model_path = resolve_face_landmarker(model_path)
        self.min_confidence = float(min_confidence)
        self.running_mode = running_mode
        self.num_faces = int(num_faces)
        self._landmarker: Any = None
        self._last_ts = -1

    # -- graph management -------------------------------------------------------------------
    def _create(self) -> Any:
        try:
            from mediapipe.tasks.python import vision
            from mediapipe.tasks.python.core.base_options import BaseOptions
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise SpeechfaceError("the MediaPipe teacher needs: pip install 'speechface[face]'") from e
        mode = vision.RunningMode.VIDEO if self.running_mode == "video" else vision.RunningMode.IMAGE
        c = self.min_confidence
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=mode, num_faces=self.num_faces,
            min_face_detection_confidence=c, min_face_presence_confidence=c,
            min_tracking_confidence=c, output_face_blendshapes=True)
        try:
            with native_logs_hidden():
                return vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as e:
            raise ModelError(f"{self.model_path}: cannot load the FaceLandmarker ({e})") from e

    def _get(self) -> Any:
        if self._landmarker is None:
            self._landmarker = self._create()
            self._last_ts = -1
        return self._landmarker

    def reset(self) -> None:
        """Forget tracking state (the next video starts fresh)."""
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graph (it is re-created on the next call)."""
        if self._landmarker is not None:
            with contextlib.suppress(Exception):
                self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> MediaPipeTeacher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; MediaPipe's own __del__ fails at interpreter exit
        with contextlib.suppress(Exception):
            self.close()

    # -- observation ------------------------------------------------------------------------
    def observe(self, image: Any, timestamp_ms: int | None = None) -> FaceObservation:
        """Run the landmarker on one RGB image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB array (or a PIL image); any memory layout (it is made
                C-contiguous: MediaPipe silently finds no face in a strided array).
            timestamp_ms: video mode only; must increase (a non-increasing value is bumped to
                last + 1 ms). Default: last + 40 ms.

        Returns:
            :class:`FaceObservation` (``found=False`` with zero arrays when no face).

        Example:
            >>> obs = teacher.observe(frame)   # doctest: +SKIP
        """
        import mediapipe as mp

        arr = np.ascontiguousarray(np.asarray(image))
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ImageError(f"observe needs an (H, W, 3) uint8 RGB image, got {arr.shape} {arr.dtype}")
        h, w = arr.shape[:2]
        lmk = self._get()
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=arr)
        if self.running_mode == "video":
            ts = self._last_ts + 40 if timestamp_ms is None else int(timestamp_ms)
            ts = max(ts, self._last_ts + 1)
            self._last_ts = ts
            result = lmk.detect_for_video(mp_image, ts)
        else:
            result = lmk.detect(mp_image)
        if not result.face_landmarks:
            return FaceObservation.empty()
        best, best_area, best_box, best_lm = 0, -1.0, None, None
        for k, face in enumerate(result.face_landmarks):
            lm = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32)
            box = np.array([lm[:, 0].min() * w, lm[:, 1].min() * h,
                            lm[:, 0].max() * w, lm[:, 1].max() * h], dtype=np.float32)
            area = float((box[2] - box[0]) * (box[3] - box[1]))
            if area > best_area:
                best, best_area, best_box, best_lm = k, area, box, lm
        bs = np.zeros(52, np.float32)
        if result.face_blendshapes and len(result.face_blendshapes) > best:
            for cat in result.face_blendshapes[best]:  # by name: robust to order changes
                idx = _BS_INDEX.get(cat.category_name, cat.index)
                if idx is not None and 0 <= idx < 52:
                    bs[idx] = cat.score
        return FaceObservation(True, bs, best_lm, best_box)

    def observe_video(self, video: Any, *, progress: bool = False) -> TeacherTrack:
        """Run the landmarker on every frame of a video.

        Args:
            video: a :class:`~speechface.render.video.VideoClip`, a video file path (decoded frame by
                frame with :func:`~speechface.render.video.iter_video_frames`), or an iterable of
                :class:`~speechface.render.video.VideoFrame`.
            progress: show a tqdm bar.

        Returns:
            :class:`TeacherTrack` with ``found (N,)``, ``blendshapes (N, 52)``,
            ``landmarks478 (N, 478, 3)``, ``boxes (N, 4)`` and the frames' ``times (N,)``.

        Example:
            >>> track = teacher.observe_video("talk.mp4")   # doctest: +SKIP
            >>> track.found.mean()                            # doctest: +SKIP
            1.0
        """
        if isinstance(video, (str, os.PathLike)):
            from ..render.video import iter_video_frames

            frames: Iterable[Any] = iter_video_frames(video)
        else:
            frames = video
        if progress:
            from tqdm.auto import tqdm

            frames = tqdm(frames, desc="faces", unit="frame", leave=False)
        if self.running_mode == "video":
            self.reset()  # a new video: fresh tracking graph, timestamps from 0
        obs, times = [], []
        for f in frames:
            ts = int(round(f.time * 1000.0)) + 1_000  # keep >= 0 even for a small negative time
            obs.append(self.observe(f.image, ts))
            times.append(f.time)
        if self.running_mode == "video":
            self.reset()
        n = len(obs)
        return TeacherTrack(
            times=np.asarray(times, dtype=np.float64),
            found=np.array([o.found for o in obs], dtype=bool),
            blendshapes=np.stack([o.blendshapes for o in obs]) if n else np.zeros((0, 52), np.float32),
            landmarks478=np.stack([o.landmarks for o in obs]) if n else np.zeros((0, 478, 3), np.float32),
            boxes=np.stack([o.box for o in obs]) if n else np.zeros((0, 4), np.float32),
        )
