"""Label a folder of face images with action units (and optionally emotions) -> one CSV.

``speechface prepare faces DIR -o labels.csv`` runs the MediaPipe FaceLandmarker teacher on
every image and writes an OpenFace-style per-image table that
:class:`~speechface.data.faces.FaceFolder` reads exactly like GANimation's
``aus_openface.csv``::

    image,AU01_r,AU02_r,AU04_r,...,AU45_r
    AJ_Cook_0001.jpg,0.4123,0.0871,...

The AU values are MediaPipe's blendshape **proxy** of the OpenFace intensities
(:func:`~speechface.teachers.mediapipe.blendshapes_to_au17`, recorded as
:data:`~speechface.teachers.mediapipe.PROXY_NAME`), not OpenFace. Images in which no face is
found get no row (FaceFolder then skips them with a warning); they are counted in the returned
summary. With ``expression=...`` the 8 FER+ emotion probabilities (``emotion8`` columns
``neutral, happiness, ...``) are appended; with ``landmarks=True`` the teacher's 68 iBUG points
(``landmarks68`` columns ``x_0..x_67, y_0..y_67``) **normalised to the image** (0-1 across the
whole picture, so a translator can place them; the ``landmarks68`` space's box is the image).

Example:
    >>> from speechface.data.prepare_faces import prepare_faces           # doctest: +SKIP
    >>> info = prepare_faces("faces128/lfw", "faces128_aus.csv")          # doctest: +SKIP
    >>> info["n_labelled"], info["n_no_face"]                              # doctest: +SKIP
    (9671, 3)
"""

from __future__ import annotations

import csv
import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core._io import atomic_write
from ..core.errors import DataError, ImageError, ModelError
from ..spaces.space import AU17, EMOTION8, LANDMARKS68
from .faces import IMAGE_EXTENSIONS

__all__ = ["prepare_faces", "list_images"]


def list_images(image_dir: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files (``.jpg``, ``.jpeg``, ``.png``) in a folder, sorted; hidden files skipped.

    Raises:
        DataError: the folder does not exist or holds no images.

    Example:
        >>> list_images("faces128/lfw")[:1]        # doctest: +SKIP
        [PosixPath('faces128/lfw/AJ_Cook_0001.jpg')]
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    pattern = "**/*" if recursive else "*"
    paths = sorted(p for p in root.glob(pattern)
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not paths:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ImageError(f"{path}: cannot read image ({e})") from e


def _resolve_expression(expression: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Turn ``expression`` into ``faces (N, H, W, 3) uint8 -> (N, 8) emotion8 probabilities``."""
    if isinstance(expression, str):
        try:
            module = importlib.import_module("speechface.teachers.expression")
        except ModuleNotFoundError as e:
            raise ModelError(f"expression={expression!r} needs the speechface.teachers.expression "
                             "package, which this installation does not have") from e
        name = None if expression in ("", "default") else expression
        recogniser = module.ExpressionRecognizer.from_pretrained(name)
    else:
        recogniser = expression
    for method in ("predict_faces", "predict_proba", "predict"):
        fn = getattr(recogniser, method, None)
        if callable(fn):
            break
    else:
        if not callable(recogniser):
            raise ModelError(f"expression recogniser {recogniser!r} is not callable and has no "
                             "predict_faces / predict_proba / predict method")
        fn = recogniser

    def run(faces: np.ndarray) -> np.ndarray:
        out = fn(faces)
        out = getattr(out, "values", out)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        arr = np.asarray(out, dtype=np.float32).reshape(len(faces), -1)
        if arr.shape[1] != EMOTION8.dim:
            raise ModelError(f"expression recogniser returned {arr.shape[1]} values per face; "
                             f"emotion8 needs {EMOTION8.dim}")
        return arr

    return run


def prepare_faces(image_dir: str | os.PathLike[str], out_csv: str | os.PathLike[str], *,
                  teacher: Any = "mediapipe", expression: Any = None,
                  model_path: str | os.PathLike[str] | None = None, recursive: bool = False,
                  min_confidence: float = 0.5, landmarks: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    """Label every face image of a folder with AU17 (proxy) values and write one CSV atomically.

    Args:
        image_dir: folder of face images (``.jpg``, ``.jpeg``, ``.png``), e.g. 128x128 crops.
        out_csv: the CSV to write: ``image,AU01_r,...,AU45_r`` (+ the 8 emotion columns with
            ``expression``); ``image`` is the path relative to ``image_dir``. Written to a
            temporary file and renamed, so it is either complete or absent.
        teacher: ``"mediapipe"`` (the only built-in teacher) or an object with an
            ``observe(rgb_uint8) -> FaceObservation`` method (e.g. a
            :class:`~speechface.teachers.MediaPipeTeacher` already open).
        expression: optional emotion recogniser adding ``emotion8`` columns: a model name or
            folder for :meth:`speechface.teachers.expression.ExpressionRecognizer.from_pretrained`
            (``"default"`` = the packaged FER+ model), an ``ExpressionRecognizer``, or any
            callable / object with ``predict_faces`` / ``predict_proba`` / ``predict`` taking
            ``(N, H, W, 3)`` uint8 faces and returning ``(N, 8)`` probabilities.
        model_path: the ``face_landmarker.task`` bundle (default: found automatically).
        recursive: also label images in sub-folders.
        min_confidence: MediaPipe detection/presence confidence.
        landmarks: also write the 68 landmark columns ``x_0..x_67, y_0..y_67`` (image-normalised:
            0 = left/top edge, 1 = right/bottom edge), the labels of the landmark translator.
        progress: show a tqdm bar.

    Returns:
        A summary dict: ``csv``, ``n_images``, ``n_labelled``, ``n_no_face``, ``no_face``
        (first 50 names), ``seconds``, ``images_per_s``, ``teacher`` (the proxy name),
        ``columns``.

    Raises:
        DataError: no folder / no images / no face found in any image.
        ModelError: unknown teacher, or an expression recogniser that cannot be used.

    Example:
        >>> info = prepare_faces("faces128/lfw", "prepared/faces128_aus.csv")   # doctest: +SKIP
        >>> from speechface.data.faces import FaceFolder
        >>> ds = FaceFolder("faces128/lfw", au_csv="prepared/faces128_aus.csv")  # doctest: +SKIP
    """
    from ..teachers.mediapipe import PROXY_NAME, MediaPipeTeacher, landmarks68_from_478

    root = Path(image_dir)
    paths = list_images(root, recursive=recursive)
    own = False
    if isinstance(teacher, str):
        if teacher != "mediapipe":
            raise ModelError(f"unknown face teacher {teacher!r}; available: mediapipe")
        obs_model: Any = MediaPipeTeacher(model_path, running_mode="image",
                                          min_confidence=min_confidence)
        own = True
    elif callable(getattr(teacher, "observe", None)):
        obs_model = teacher
    else:
        raise ModelError(f"teacher must be 'mediapipe' or have an observe() method, got {teacher!r}")
    emo = _resolve_expression(expression) if expression is not None else None

    columns = (["image", *AU17.columns] + (list(LANDMARKS68.columns) if landmarks else [])
               + (list(EMOTION8.columns) if emo else []))
    rows: list[list[Any]] = []
    no_face: list[str] = []
    start = time.perf_counter()
    iterator: Any = paths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(paths, desc="labelling faces", unit="img", leave=False)
    batch_imgs: list[np.ndarray] = []
    batch_rows: list[list[Any]] = []

    def flush() -> None:
        if emo is not None and batch_rows:
            probs = emo(np.stack(batch_imgs))
            for r, p in zip(batch_rows, probs):
                r.extend(float(v) for v in p)
        rows.extend(batch_rows)
        batch_imgs.clear()
        batch_rows.clear()

    try:
        for path in iterator:
            img = _read_rgb(path)
            obs = obs_model.observe(img)
            name = path.relative_to(root).as_posix()
            if not obs.found:
                no_face.append(name)
                continue
            row = [name, *(float(v) for v in obs.au17)]
            if landmarks:
                xy = landmarks68_from_478(obs.landmarks, (0.0, 0.0, 1.0, 1.0))
                row += [float(v) for v in xy]
            batch_rows.append(row)
            if emo is not None:
                batch_imgs.append(img)
                if len(batch_imgs) >= 64:
                    flush()
        flush()
    finally:
        if own:
            obs_model.close()
    seconds = time.perf_counter() - start
    if not rows:
        raise DataError(f"{root}: no face found in any of {len(paths)} images")
    with atomic_write(out_csv, newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([r[0], *(f"{v:.4f}" for v in r[1:])])
    return {"csv": str(out_csv), "n_images": len(paths), "n_labelled": len(rows),
            "n_no_face": len(no_face), "no_face": no_face[:50], "seconds": seconds,
            "images_per_s": len(paths) / max(seconds, 1e-9), "teacher": PROXY_NAME,
            "columns": columns}
