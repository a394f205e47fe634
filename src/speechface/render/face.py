"""Faces in still photos: load, detect, crop and paste back (for animating a photo with speech).

The pieces :func:`speechface.render.animate.animate` is built from, usable on their own:

- :func:`load_image`: any photo (file, PIL image or array; grey, RGBA, CMYK, 16-bit, palette,
  EXIF-rotated) -> ``(H, W, 3)`` uint8 RGB.
- :func:`detect_faces`: the faces in a photo as :class:`FaceBox` es, left to right. Uses the
  MediaPipe FaceLandmarker (the ``[face]`` extra; the model bundle is found by
  :func:`~speechface.teachers.mediapipe.resolve_face_landmarker`), falls back to OpenCV's Haar
  cascade when MediaPipe is not installed. Big photos are searched on a downscaled copy.
- :func:`find_face`: load + detect + pick one face (default: the largest) with clear errors.
- :func:`crop_face`: a square crop around a face with a margin, padded at the photo border,
  that remembers where it came from (:class:`FaceCrop`).
- :func:`paste_face`: blend a generated square face back into the full-resolution photo with
  a feathered mask; pixels outside the crop box stay bit-identical.

Example:
    >>> from speechface.render.face import load_image, find_face, crop_face, paste_face  # doctest: +SKIP
    >>> photo = load_image("portrait.jpg")                  # doctest: +SKIP
    >>> box = find_face(photo)                              # doctest: +SKIP
    >>> crop = crop_face(photo, box, size=128)              # doctest: +SKIP
    >>> out = paste_face(photo, crop, edited_128px_face)    # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ImageError, ModelError, NoFaceError
from ..teachers.mediapipe import native_logs_hidden, quiet_native_logs

__all__ = [
    "blend_region",
    "source_label",
    "FaceBox",
    "FaceCrop",
    "load_image",
    "detect_faces",
    "select_face",
    "find_face",
    "crop_face",
    "paste_face",
    "face_mask",
    "MIN_IMAGE_SIZE",
    "DETECT_MAX_SIDE",
    "DEFAULT_MARGIN",
    "DEFAULT_FEATHER",
    "quiet_native_logs",
    "native_logs_hidden",
]

#: Smallest accepted image side in pixels.
MIN_IMAGE_SIZE = 32
#: Detection runs on a copy whose longer side is at most this many pixels (boxes are mapped back).
DETECT_MAX_SIDE = 1280
#: Default crop margin: the fraction of the face box's longer side added on every side.
DEFAULT_MARGIN = 0.35
#: Default feather: fraction of the crop side over which the paste-back mask ramps from 0 to 1.
DEFAULT_FEATHER = 0.1

_HAAR_FILE = "haarcascade_frontalface_default.xml"
# Haar boxes span brows-to-mouth; these factors map them onto MediaPipe mesh extents (forehead to
# chin, cheek to cheek): medians over the shared portraits and 25 LFW faces (spread about 0.07):
# width x0.93, height x1.10, centre 0.09 box heights lower.
_HAAR_W, _HAAR_H, _HAAR_DY = 0.93, 1.10, 0.09


# --------------------------------------------------------------------------- image loading
def source_label(source: Any, name: str | None) -> str:
    """How to call an image in messages: ``name`` quoted, the path quoted, or "image array".

    Example:
        >>> source_label("photo.jpg", None)
        "'photo.jpg'"
    """
    if name is not None:
        return repr(name)
    if isinstance(source, (str, os.PathLike)):
        return f"'{Path(source)}'"
    return "image array" if isinstance(source, np.ndarray) else "image"


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` float (H, W, 3) 0-255 and ``alpha`` float (H, W) 0-1 -> uint8 over white."""
    out = rgb * alpha[..., None] + 255.0 * (1.0 - alpha[..., None])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _to_uint8(arr: np.ndarray, label: str, sixteen_bit: bool | None = None) -> np.ndarray:
    """Samples of any numeric dtype -> uint8 0-255.

    uint16 (and ``sixteen_bit=True``) data is scaled by 1/257; other integer types are taken as
    8-bit when their values fit 0-255, else as 16-bit; floats in 0-1 are scaled by 255 (floats
    above 1 are taken as 0-255).
    """
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind in "iu":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0:
            raise ImageError(f"{label}: negative pixel values ({arr.dtype}, min {lo})")
        if hi > 65535:
            raise ImageError(f"{label}: pixel values up to {hi} do not fit 16 bits ({arr.dtype})")
        if sixteen_bit is None:
            sixteen_bit = arr.dtype == np.uint16 or hi > 255
        if sixteen_bit:
            return np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        a = arr.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError(f"{label}: NaN or infinite pixel values")
        scale = 255.0 if (a.size == 0 or float(a.max()) <= 1.0) else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    raise ImageError(f"{label}: unsupported pixel type {arr.dtype}")


def _array_to_rgb(arr: np.ndarray, label: str, sixteen_bit: bool | None = None) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|2|3|4)`` array -> ``(H, W, 3)`` uint8 (alpha over white)."""
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"{label}: shape {arr.shape} looks channels-first; give (H, W, C), e.g. "
                         "arr.transpose(1, 2, 0)")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"{label}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape "
                         f"{arr.shape}")
    u8 = _to_uint8(arr, label, sixteen_bit)
    c = u8.shape[-1]
    if c in (2, 4):  # grey+alpha / RGBA: composite on white
        colour = u8[..., :1].repeat(3, axis=-1) if c == 2 else u8[..., :3]
        alpha = u8[..., -1].astype(np.float32) / 255.0
        return _composite_on_white(colour.astype(np.float32), alpha)
    if c == 1:
        return np.repeat(u8, 3, axis=-1)
    return u8


def _pil_to_rgb(im: Any, label: str) -> np.ndarray:
    """A PIL image of any mode -> ``(H, W, 3)`` uint8 RGB (transparency composited on white)."""
    from PIL import Image

    mode = im.mode
    if mode.startswith("I") or mode == "F":  # 16-bit grey (I;16, or I from a 16-bit PNG), float
        return _array_to_rgb(np.asarray(im), label, sixteen_bit=True)
    if mode == "1":
        im = im.convert("L")
        mode = "L"
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return _composite_on_white(rgba[..., :3].astype(np.float32),
                                   rgba[..., 3].astype(np.float32) / 255.0)
    if mode != "RGB":
        try:
            im = im.convert("RGB")
        except ValueError as e:
            raise ImageError(f"{label}: cannot convert image mode {mode} to RGB ({e})") from e
    assert isinstance(im, Image.Image)
    return np.asarray(im, dtype=np.uint8)


def load_image(source: Any, *, name: str | None = None) -> np.ndarray:
    """Read a photo as ``(H, W, 3)`` uint8 RGB (C-contiguous).

    Conversions:

    - grey (``L``, ``1``), palette (``P``), CMYK, YCbCr ... -> RGB (PIL's conversion);
    - 16-bit (``I;16``, 16-bit PNG read as ``I``) and uint16 arrays -> ``round(v / 257)``;
      float images/arrays in 0-1 -> ``* 255`` (values above 1 are taken as 0-255);
    - **transparency** (``RGBA``, ``LA``, ``PA``, palette or RGB with a transparent colour,
      ``(H, W, 4)`` arrays) is **composited on white**: a transparent background becomes white,
      half-transparent pixels are blended. The output never has an alpha channel.
    - files are turned upright from their EXIF orientation (phone photos).

    Args:
        source: a file path (JPEG, PNG, WebP, TIFF, BMP ... anything PIL reads), a PIL image,
            or a numpy array ``(H, W)`` / ``(H, W, 1|2|3|4)`` of uint8, uint16, bool or float.
        name: how to call the image in error messages (default: the path / "image array").

    Returns:
        ``(H, W, 3)`` uint8 array.

    Raises:
        ImageError: naming the file: missing, a directory, empty, unreadable/corrupt/truncated,
            too large for PIL's decompression-bomb guard, an unsupported layout, or smaller than
            :data:`MIN_IMAGE_SIZE` (32 px) on a side.

    Example:
        >>> load_image(np.zeros((40, 50), np.uint16)).shape
        (40, 50, 3)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = source_label(source, name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image file {label} not found")
        if path.is_dir():
            raise ImageError(f"image file {label} is a directory")
        if path.stat().st_size == 0:
            raise ImageError(f"image file {label} is empty (0 bytes)")
        label = f"image file {label}"
        try:
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im) or im
                arr = _pil_to_rgb(im, label)
        except Image.DecompressionBombError as e:
            raise ImageError(f"{label} is too large to decode safely ({e})") from e
        except UnidentifiedImageError as e:
            raise ImageError(f"{label} is not an image PIL can read (corrupt or unsupported "
                             f"format)") from e
        except (OSError, SyntaxError, ValueError) as e:
            if isinstance(e, ImageError):
                raise
            raise ImageError(f"cannot read {label}: {e}") from e
    elif isinstance(source, Image.Image):
        arr = _pil_to_rgb(source, label)
    elif isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        if hasattr(source, "detach"):  # torch tensor
            source = source.detach().cpu().numpy()
        arr = _array_to_rgb(np.asarray(source), label)
    else:
        raise ImageError(f"load_image: expected a file path, a PIL image or a numpy array, got "
                         f"{type(source).__name__}")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIZE:
        raise ImageError(f"{label} is too small: {w}x{h} pixels (at least {MIN_IMAGE_SIZE} px "
                         f"on each side)")
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class FaceBox:
    """One detected face, in pixels of the full-resolution photo.

    Attributes:
        x0, y0, x1, y1: the face box (float pixels). With MediaPipe it is the extent of the
            478 mesh landmarks (about forehead to chin, cheek to cheek); Haar boxes are
            rescaled to roughly the same extent.
        score: detector confidence when known, else ``None``.
        landmarks: ``(478, 3)`` float32 mesh points in pixels (x, y; z in the scale of x) with
            MediaPipe, ``None`` with the Haar fallback.
        backend: ``"mediapipe"`` or ``"opencv"``.

    Example:
        >>> b = FaceBox(10, 20, 110, 140)
        >>> b.width, b.height, b.center
        (100.0, 120.0, (60.0, 80.0))
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float | None = None
    landmarks: np.ndarray | None = None
    backend: str = "mediapipe"

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.x1 - self.x0)

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.y1 - self.y0)

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        """``(cx, cy)`` in pixels."""
        return (float(self.x0 + self.x1) / 2, float(self.y0 + self.y1) / 2)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` as plain floats."""
        return (float(self.x0), float(self.y0), float(self.x1), float(self.y1))

    def __repr__(self) -> str:
        x0, y0, x1, y1 = self.xyxy
        return (f"FaceBox(x0={x0:.1f}, y0={y0:.1f}, x1={x1:.1f}, y1={y1:.1f}, "
                f"backend={self.backend!r})")


_LOCK = threading.Lock()
_TEACHERS: dict[tuple[str, int, float], Any] = {}


@atexit.register
def _close_teachers() -> None:  # MediaPipe's own __del__ fails at interpreter exit
    for t in list(_TEACHERS.values()):
        with contextlib.suppress(Exception):
            t.close()
    _TEACHERS.clear()


def _landmarker(model_path: Any, max_faces: int, min_confidence: float) -> Any:
    """A cached MediaPipe FaceLandmarker graph (image mode) via :class:`MediaPipeTeacher`."""
    from ..teachers.mediapipe import FACE_LANDMARKER_URL, MediaPipeTeacher, resolve_face_landmarker

    try:
        path = resolve_face_landmarker(model_path)
    except ModelError as e:
        if model_path is not None or os.environ.get("SPEECHFACE_FACE_LANDMARKER"):
            raise
        raise ModelError(
            f"face detection needs MediaPipe's face_landmarker.task, which is not cached and "
            f"could not be downloaded ({e.__cause__ or e}); download {FACE_LANDMARKER_URL} "
            "and set SPEECHFACE_FACE_LANDMARKER to its path") from e
    key = (str(path), int(max_faces), float(min_confidence))
    teacher = _TEACHERS.get(key)
    if teacher is None:
        teacher = MediaPipeTeacher(path, min_confidence=min_confidence, running_mode="image",
                                   num_faces=max_faces)
    if teacher._landmarker is None:
        try:
            with native_logs_hidden():
                teacher._get()
        except (RuntimeError, ValueError, OSError) as e:
            src = " (from SPEECHFACE_FACE_LANDMARKER)" if model_path is None and \
                os.environ.get("SPEECHFACE_FACE_LANDMARKER") else ""
            raise ModelError(f"'{path}'{src}: not a usable MediaPipe face_landmarker.task "
                             f"bundle ({' '.join(str(e).split())[:200]})") from None
        _TEACHERS[key] = teacher
    return teacher._get()


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    from PIL import Image

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR, reducing_gap=2.0))


def _mediapipe_boxes(img: np.ndarray, landmarker: Any, x_off: float, y_off: float,
                     sx: float, sy: float) -> list[FaceBox]:
    """Faces in ``img``; landmarks mapped by ``x = x_off + nx * sx`` (pixels of the photo)."""
    import mediapipe as mp

    result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                        data=np.ascontiguousarray(img)))
    boxes = []
    for face in result.face_landmarks or []:
        lm = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32)
        px = np.empty_like(lm)
        px[:, 0] = x_off + lm[:, 0] * sx
        px[:, 1] = y_off + lm[:, 1] * sy
        px[:, 2] = lm[:, 2] * sx
        boxes.append(FaceBox(float(px[:, 0].min()), float(px[:, 1].min()),
                             float(px[:, 0].max()), float(px[:, 1].max()),
                             landmarks=px, backend="mediapipe"))
    return boxes


def _dedupe(boxes: list[FaceBox], limit: int) -> list[FaceBox]:
    """Drop boxes mostly inside a larger kept one (duplicates from overlapping tiles)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.area):
        dup = False
        for k in kept:
            iw = min(b.x1, k.x1) - max(b.x0, k.x0)
            ih = min(b.y1, k.y1) - max(b.y0, k.y0)
            if iw > 0 and ih > 0 and iw * ih > 0.5 * min(b.area, k.area):
                dup = True
                break
        if not dup:
            kept.append(b)
    return kept[:limit]


def _detect_mediapipe(image: np.ndarray, max_faces: int, min_confidence: float,
                      model_path: Any) -> list[FaceBox]:
    h, w = image.shape[:2]
    small = _downscale(image, DETECT_MAX_SIDE)
    sh, sw = small.shape[:2]
    with _LOCK:
        lmk = _landmarker(model_path, max_faces, min_confidence)
        boxes = _mediapipe_boxes(small, lmk, 0.0, 0.0, float(w), float(h))
        if not boxes and min(sh, sw) >= 2 * 64:
            # MediaPipe's face detector is short-range: faces under ~1/6 of the frame are
            # missed. Try again on a 3x3 grid of half-size tiles (50 % overlap).
            th, tw = sh // 2, sw // 2
            fx, fy = w / sw, h / sh
            for ty in (0, sh // 4, sh - th):
                for tx in (0, sw // 4, sw - tw):
                    tile = small[ty:ty + th, tx:tx + tw]
                    boxes += _mediapipe_boxes(tile, lmk, tx * fx, ty * fy, tw * fx, th * fy)
    return _dedupe(boxes, max_faces)


def _detect_opencv(image: np.ndarray, max_faces: int) -> list[FaceBox]:
    import cv2

    cascade_path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""),
                                _HAAR_FILE)
    if not os.path.isfile(cascade_path):
        raise ImportError(f"OpenCV has no {_HAAR_FILE} (opencv-python 5 dropped the cascades; "
                          "pip install 'opencv-python-headless<5')")
    cascade = cv2.CascadeClassifier(cascade_path)
    h, w = image.shape[:2]
    small = _downscale(image, 800)
    scale = w / small.shape[1]
    grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY))
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    boxes = []
    for x, y, bw, bh in np.asarray(found).reshape(-1, 4).astype(np.float64) * scale:
        cx, cy = x + bw / 2, y + bh / 2 + _HAAR_DY * bh
        hw, hh = bw * _HAAR_W / 2, bh * _HAAR_H / 2
        boxes.append(FaceBox(cx - hw, cy - hh, cx + hw, cy + hh, backend="opencv"))
    return _dedupe(boxes, max_faces)


def _mediapipe_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


def detect_faces(image: Any, *, max_faces: int = 4, min_confidence: float = 0.5,
                 backend: str = "auto", model_path: str | os.PathLike[str] | None = None,
                 ) -> list[FaceBox]:
    """Find the faces in a photo.

    Detection runs on a copy downscaled to at most :data:`DETECT_MAX_SIDE` px (an 8000x8000
    photo is fine); boxes and landmarks are returned in pixels of the full image. When the
    whole image shows no face, MediaPipe is run again on a 3x3 grid of overlapping half-size
    tiles, which finds faces down to roughly 1/12 of the image side.

    Args:
        image: anything :func:`load_image` reads (a path, PIL image or array).
        max_faces: at most this many faces are returned (MediaPipe ``num_faces``).
        min_confidence: MediaPipe detection/presence confidence threshold.
        backend: ``"mediapipe"``, ``"opencv"`` (Haar cascade; coarser boxes, no landmarks) or
            ``"auto"``: MediaPipe when it is installed, else OpenCV.
        model_path: the ``face_landmarker.task`` bundle (default: found by
            :func:`~speechface.teachers.mediapipe.resolve_face_landmarker`).

    Returns:
        A list of :class:`FaceBox`, **sorted left to right** (by box centre); empty if none.

    Raises:
        ImageError: the image cannot be read, or neither ``mediapipe`` (``pip install
            'speechface[face]'``) nor ``opencv-python-headless`` is installed.
        ModelError: MediaPipe is installed but its model bundle cannot be found or downloaded
            (with ``backend="auto"`` and OpenCV installed, OpenCV is used instead, with a
            warning; not when ``model_path`` or ``SPEECHFACE_FACE_LANDMARKER`` names the
            bundle: then its problem is the error).

    Example:
        >>> faces = detect_faces("group.jpg")                # doctest: +SKIP
        >>> [round(f.width) for f in faces]                  # doctest: +SKIP
        [212, 188]
    """
    img = load_image(image) if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
                                    and image.ndim == 3 and image.shape[-1] == 3) else image
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    if backend not in ("auto", "mediapipe", "opencv"):
        raise ValueError(f"backend must be 'auto', 'mediapipe' or 'opencv', got {backend!r}")
    boxes: list[FaceBox] | None = None
    if backend in ("auto", "mediapipe"):
        if _mediapipe_available():
            try:
                boxes = _detect_mediapipe(img, max_faces, min_confidence, model_path)
            except ModelError as e:
                if backend == "mediapipe" or model_path is not None or \
                        os.environ.get("SPEECHFACE_FACE_LANDMARKER"):
                    raise  # a model the user named: its error, no fallback
                try:
                    boxes = _detect_opencv(img, max_faces)
                except ImportError:
                    raise e from None
                warnings.warn(f"MediaPipe face model unavailable ({e}); using OpenCV's Haar "
                              "cascade instead", stacklevel=2)
        elif backend == "mediapipe":
            raise ImageError("face detection with MediaPipe needs: pip install 'speechface[face]'")
    if boxes is None:
        try:
            boxes = _detect_opencv(img, max_faces)
        except ImportError as e:
            raise ImageError("face detection needs MediaPipe (pip install 'speechface[face]') or, "
                             f"as a fallback, OpenCV (pip install opencv-python-headless): {e}"
                             ) from e
    return sorted(boxes, key=lambda b: b.center[0])


def select_face(faces: Sequence[FaceBox], face_index: int | None = None, *,
                name: str = "the image") -> FaceBox:
    """Pick one face: ``faces[face_index]`` (left to right, negative counts from the right), or
    the largest one when ``face_index`` is None.

    Raises:
        NoFaceError: no faces, or ``face_index`` out of range (the message says how many were
            found).

    Example:
        >>> select_face([FaceBox(0, 0, 10, 10), FaceBox(20, 0, 50, 30)]).width
        30.0
    """
    if not faces:
        raise NoFaceError(f"no face found in {name} (faces smaller than about 1/12 of the "
                          "image, strongly turned or covered faces are missed; try a closer crop)")
    n = len(faces)
    if face_index is None:
        return max(faces, key=lambda f: f.area)
    if not -n <= int(face_index) < n:
        found = "only 1 face was" if n == 1 else f"{n} faces were"
        raise NoFaceError(f"face_index={face_index} but {found} found in {name}: use face_index "
                          f"0-{n - 1} (left to right), or none for the largest face")
    return faces[int(face_index)]


def find_face(image: Any, face_index: int | None = None, **detect_args: Any) -> FaceBox:
    """Detect the faces in ``image`` and return one (default: the largest).

    Args:
        image: a path, PIL image or array (see :func:`load_image`).
        face_index: which face, counted left to right (0 = leftmost); None = the largest.
        **detect_args: passed to :func:`detect_faces`.

    Raises:
        NoFaceError: no face, or ``face_index`` out of range; the message names the file and
            says how many faces were found.

    Example:
        >>> box = find_face("portrait.jpg")     # doctest: +SKIP
    """
    name = source_label(image, None)
    faces = detect_faces(image, **detect_args)
    return select_face(faces, face_index, name=name)


# --------------------------------------------------------------------------- crop / paste
@dataclass
class FaceCrop:
    """A square face crop and where it lies in its photo.

    Attributes:
        image: ``(size, size, 3)`` uint8 crop (C-contiguous).
        x0, y0: top-left corner of the crop square in photo pixels (may be negative: the part
            outside the photo was padded by repeating the border pixels).
        side: side of the crop square in photo pixels.
        image_shape: ``(H, W)`` of the photo it was cut from.
        margin: the margin it was made with.

    Example:
        >>> c = crop_face(np.zeros((100, 100, 3), np.uint8), (40, 40, 60, 60), margin=0.5)
        >>> c.box, c.size, c.scale
        ((30, 30, 70, 70), 40, 1.0)
    """

    image: np.ndarray
    x0: int
    y0: int
    side: int
    image_shape: tuple[int, int]
    margin: float = DEFAULT_MARGIN

    @property
    def size(self) -> int:
        """Side of :attr:`image` in pixels."""
        return int(self.image.shape[0])

    @property
    def scale(self) -> float:
        """``size / side``: crop pixels per photo pixel."""
        return self.size / self.side

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the crop square in photo pixels (may leave the photo)."""
        return (self.x0, self.y0, self.x0 + self.side, self.y0 + self.side)

    def visible(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the photo covered by the crop."""
        h, w = self.image_shape
        x0, y0, x1, y1 = self.box
        return slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))


def _box_tuple(box: Any) -> tuple[float, float, float, float]:
    if isinstance(box, FaceBox):
        return box.xyxy
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box!r}")
    return tuple(float(v) for v in b)  # type: ignore[return-value]


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    if img.shape[0] == side and img.shape[1] == side:
        return img
    method = Image.LANCZOS if side < img.shape[0] else Image.BICUBIC
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((side, side), method))


def crop_face(image: np.ndarray, box: Any, margin: float = DEFAULT_MARGIN,
              size: int | None = None, shift: float = 0.0) -> FaceCrop:
    """Cut a square around a face.

    The square is centred on the box centre; its side is ``max(width, height) * (1 + 2 *
    margin)`` (``margin`` = fraction of the box's longer side added on **each** side; 0.35 gives
    1.7x the face box, room for hair, chin and the paste-back feather). Parts outside the photo
    are padded by repeating the border pixels (not black, which would look like an edge to a
    network). The transform is recorded in the returned :class:`FaceCrop` for
    :func:`paste_face`.

    Args:
        image: ``(H, W, 3)`` uint8 photo.
        box: a :class:`FaceBox` or ``(x0, y0, x1, y1)`` in pixels.
        margin: see above (>= 0).
        size: resize the crop to ``size x size`` (Lanczos down, bicubic up); None keeps the
            photo's resolution (``size == side``).
        shift: move the square up by this fraction of its side (the face box centre then lies
            ``shift`` below the crop centre). Translators trained on LFW-style crops, where the
            face mesh sits low in the picture, record theirs as ``info["crop_shift"]``.

    Returns:
        :class:`FaceCrop`.

    Example:
        >>> photo = np.zeros((200, 300, 3), np.uint8)
        >>> crop_face(photo, (100, 50, 160, 130), size=64).image.shape
        (64, 64, 3)
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ImageError(f"crop_face needs an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if size is not None and int(size) < 1:
        raise ValueError(f"size must be >= 1, got {size!r}")
    if not (np.isfinite(shift) and abs(shift) < 0.5):
        raise ValueError(f"shift must be a fraction of the crop side in (-0.5, 0.5), got {shift!r}")
    x0, y0, x1, y1 = _box_tuple(box)
    h, w = img.shape[:2]
    side = max(1, int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - shift * side
    sx, sy = int(round(cx - side / 2)), int(round(cy - side / 2))
    if sx >= w or sy >= h or sx + side <= 0 or sy + side <= 0:
        raise ImageError(f"face box {tuple(round(v, 1) for v in (x0, y0, x1, y1))} lies outside "
                         f"the {w}x{h} image")
    vy0, vy1 = max(sy, 0), min(sy + side, h)
    vx0, vx1 = max(sx, 0), min(sx + side, w)
    patch = img[vy0:vy1, vx0:vx1]
    pad = ((vy0 - sy, sy + side - vy1), (vx0 - sx, sx + side - vx1), (0, 0))
    if any(p for p2 in pad for p in p2):
        patch = np.pad(patch, pad, mode="edge")
    if size is not None:
        patch = _resize(patch, int(size))
    return FaceCrop(np.ascontiguousarray(patch), sx, sy, side, (h, w), float(margin))


@lru_cache(maxsize=16)
def _mask(side: int, feather: float, shape: str) -> np.ndarray:
    u = (np.arange(side, dtype=np.float64) + 0.5) / side * 2 - 1
    if shape == "ellipse":
        r = np.sqrt(u[None, :] ** 2 + u[:, None] ** 2)
    else:
        r = np.maximum(np.abs(u)[None, :], np.abs(u)[:, None])
    band = 2.0 * feather
    if band <= 0:
        m = (r < 1).astype(np.float32)
    else:
        t = np.clip((1.0 - r) / band, 0.0, 1.0)
        m = (t * t * (3 - 2 * t)).astype(np.float32)
    m.setflags(write=False)
    return m


def face_mask(side: int, feather: float = DEFAULT_FEATHER, shape: str = "ellipse") -> np.ndarray:
    """The paste-back blending weights of a ``side x side`` crop (1 = generated face).

    ``shape="ellipse"``: the circle inscribed in the square; ``"rect"``: the square itself.
    Weights are exactly 0 on and outside the shape's border, exactly 1 further than
    ``feather * side`` inside it, and a smoothstep in between.

    Returns:
        ``(side, side)`` float32, read-only (cached).

    Example:
        >>> m = face_mask(100, 0.1)
        >>> float(m[50, 50]), float(m[0, 0]), bool(m[50, 0] < 0.01)
        (1.0, 0.0, True)
    """
    if shape not in ("ellipse", "rect"):
        raise ValueError(f"shape must be 'ellipse' or 'rect', got {shape!r}")
    if not (0 <= feather <= 0.5):
        raise ValueError(f"feather must be in [0, 0.5], got {feather!r}")
    return _mask(int(side), float(feather), shape)


def blend_region(image: np.ndarray, crop: FaceCrop, new_face: Any, feather: float,
                 shape: str) -> tuple[tuple[slice, slice], np.ndarray | None]:
    """``(rows, cols)`` of the photo and the blended uint8 patch for them (None: nothing).

    ``new_face`` (a square ``(S, S, 3)`` image of the crop after editing) is resized to the
    crop and blended over ``image`` inside it with :func:`face_mask` (``feather``, ``shape``
    ``"ellipse"`` or ``"rect"``); ``image[rows, cols] = patch`` pastes it.
    """
    h, w = image.shape[:2]
    if (h, w) != tuple(crop.image_shape):
        raise ImageError(f"the crop was made from a {crop.image_shape[1]}x{crop.image_shape[0]} "
                         f"image, not this {w}x{h} one")
    face = np.asarray(new_face)
    if face.ndim != 3 or face.shape[-1] != 3 or face.shape[0] != face.shape[1]:
        raise ImageError(f"new_face must be a square (S, S, 3) image, got shape {face.shape}")
    face = _to_uint8(face, "new_face")
    rows, cols = crop.visible()
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return (rows, cols), None
    face = _resize(face, crop.side)
    m = face_mask(crop.side, feather, shape)
    fr = slice(rows.start - crop.y0, rows.stop - crop.y0)
    fc = slice(cols.start - crop.x0, cols.stop - crop.x0)
    weight = m[fr, fc, None]
    orig = image[rows, cols].astype(np.float32)
    new = face[fr, fc].astype(np.float32)
    out = np.rint(orig + weight * (new - orig))  # weight 0 -> exactly orig, 1 -> exactly new
    return (rows, cols), np.clip(out, 0, 255).astype(np.uint8)


def paste_face(image: np.ndarray, crop: FaceCrop, new_face: Any, feather: float = DEFAULT_FEATHER,
               *, shape: str = "ellipse") -> np.ndarray:
    """Blend a generated face back into the full-resolution photo.

    ``new_face`` (any square size, e.g. the translator's output for ``crop.image``) is resized to
    the crop's side in photo pixels and blended with :func:`face_mask`: inside the inscribed
    circle (``shape="ellipse"``) or square (``"rect"``) minus a ``feather * side`` band it
    replaces the photo, across the band it fades out. **Pixels outside the crop box are
    bit-identical to** ``image`` (so are those where the mask is 0). The photo is not modified.

    Args:
        image: ``(H, W, 3)`` uint8, the photo the crop was cut from.
        crop: the :class:`FaceCrop` from :func:`crop_face`.
        new_face: ``(S, S, 3)`` uint8 (or float 0-1) face.
        feather: width of the soft edge as a fraction of the crop side (0 = hard edge, 0.5 max).
        shape: ``"ellipse"`` (default) or ``"rect"``.

    Returns:
        A new ``(H, W, 3)`` uint8 array.

    Example:
        >>> photo = np.full((120, 160, 3), 90, np.uint8)
        >>> c = crop_face(photo, (60, 30, 100, 80), size=32)
        >>> out = paste_face(photo, c, np.zeros((32, 32, 3), np.uint8))
        >>> c.box                          # the crop square in photo pixels
        (38, 12, 123, 97)
        >>> bool((out[:, :38] == photo[:, :38]).all()), int(out[55, 80, 0])
        (True, 0)
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ImageError(f"paste_face needs an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    out = img.copy()
    (rows, cols), patch = blend_region(img, crop, new_face, feather, shape)
    if patch is not None:
        out[rows, cols] = patch
    return out
