"""Per-frame FER+ teacher targets (``targets_emotion8``) for prepared talking-face shards.

The distillation route of ``speechface train emotion`` learns speech -> emotion from these:
every video frame's face (box from MediaPipe) is cropped and scored by the FER+ expression
recogniser, and the distributions are put on the 25 fps grid of the audio features.
``speechface prepare emotion SHARDS -o OUT`` runs it (:func:`add_emotion_targets`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError, SpeechfaceError
from ..spaces.space import EMOTION8

__all__ = ["emotion_targets_for_video", "add_emotion_targets"]

log = logging.getLogger(__name__)
FPS = 25


def _crop_grey(image: np.ndarray, box: np.ndarray, margin: float, size: int) -> np.ndarray:
    from PIL import Image

    from ..render.face import crop_face

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
    side (:func:`~speechface.render.face.crop_face`), turned grey, resized to the recogniser's input and
    scored. The distributions are then resampled from the video's timestamps onto frames
    ``n / 25`` s with :func:`~speechface.data.openface.to_frame_grid` (so any frame rate lines up
    with the audio features) and renormalised.

    Args:
        video: the source video.
        recognizer: an :class:`~speechface.teachers.expression.ExpressionRecognizer`.
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
    from ..render.video import iter_video_frames
    from .openface import to_frame_grid

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
        recognizer: an :class:`~speechface.teachers.expression.ExpressionRecognizer`, or a model
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
    from ..core._io import atomic_write
    from ..teachers.expression import ExpressionRecognizer
    from ..teachers.mediapipe import MediaPipeTeacher
    from .shards import list_clips, read_clip, rebuild_manifest, write_clip

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
