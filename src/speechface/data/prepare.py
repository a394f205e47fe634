"""Turn talking-face videos into training shards: speech features + per-frame face targets.

For every video: decode the 16 kHz mono speech, compute log-mel features (``frames =
len(audio) // 640``, frame ``n`` at ``n / 25`` s), label every *video* frame with a teacher, and
resample the labels from the video's own timestamps onto the 25 fps feature grid with
:func:`~speechface.data.openface.to_frame_grid` (so 29.97, 30 or variable-rate clips line up).

Teachers:

- ``"mediapipe"`` (default): :class:`~speechface.teachers.MediaPipeTeacher`. Targets are the AU
  **proxy** :func:`~speechface.teachers.blendshapes_to_au17` (recorded as
  ``teacher = "mediapipe_blendshape_proxy_v1"``; it is not OpenFace), landmarks68 (iBUG subset of
  the mesh in a clip-stable face box) and the 52 blendshapes.
- ``"openface"``: real OpenFace 2 CSVs, one per video in ``openface_dir`` named by the video's
  stem (``clip.mp4`` -> ``clip.csv``). AU targets come from the CSV; landmarks68 too when the CSV
  has ``x_0..y_67`` (else zeros, and the record's ``targets`` omits ``landmarks68``);
  blendshapes are zeros.

**Clip names and groups.** A clip is named ``<parent folder>__<stem>`` (``grid_s1__bbaf2n``,
``av_clips__retalking_1``), the same however the inputs are given. Its group (``speaker``, used
for speaker-disjoint splits) follows ``group_by``:

- ``"auto"`` (default): the parent folder when its name looks like one speaker's folder
  (``s1``, ``grid_s1``, ``Actor_01``, ``id10001``, ``speaker_x``), else the clip itself;
- ``"folder"``: the parent folder name; ``"file"``: the clip name.

``groups`` (a dict or a JSON file ``{clip name, file name or stem: group}``) overrides both, e.g.
to join two clips of the same person found in different folders.

**Resuming and parallel work.** A clip whose ``.npz`` exists and is readable is skipped (unless
``overwrite``). ``shard=(i, n)`` (CLI ``--shard i/n``, ``0 <= i < n``) takes every n-th file of the
sorted file list starting at ``i``, so ``n`` processes or machines split the work, each writing
its own manifest part ``manifest.<i>of<n>.json``; see :mod:`speechface.data.shards` for how the
parts are merged. At the end each process rewrites the merged ``manifest.json``.

Example:
    >>> from speechface.data.prepare import prepare_av                 # doctest: +SKIP
    >>> records = prepare_av(["data/av_clips"], "prepared/av_mediapipe")  # doctest: +SKIP
    >>> records[0]["teacher"], records[0]["n_frames"]                  # doctest: +SKIP
    ('mediapipe_blendshape_proxy_v1', 74)

Command line::

    speechface prepare av data/av_clips -o prepared/av_mediapipe [--shard 0/2]
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError, SpeechfaceError
from ..render.video import VIDEO_EXTENSIONS as _VIDEO_EXTENSIONS
from .openface import read_openface_csv, to_frame_grid
from .shards import (
    SAMPLES_PER_FRAME,
    clip_is_complete,
    read_clip,
    rebuild_manifest,
    write_clip,
    write_manifest,
)

__all__ = [
    "prepare_av",
    "load_groups",
    "find_videos",
    "clip_name",
    "clip_group",
    "select_shard",
    "parse_shard",
]

log = logging.getLogger(__name__)

FPS = 25
_SPEAKER_FOLDER = re.compile(
    r"^(?:grid_)?s\d{1,3}$|^actor_?\d+$|^id\d{4,}$|^(?:speaker|spk)[_-]?[\w-]+$", re.IGNORECASE)


# --------------------------------------------------------------------------- files and names
def find_videos(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Video files named by ``inputs`` (files, or folders searched recursively), sorted, unique.

    Raises:
        DataError: an input does not exist, or nothing is found.

    Example:
        >>> find_videos(["data/av_clips"])[:1]   # doctest: +SKIP
        [PosixPath('data/av_clips/grid_bbaf2n.mpg')]
    """
    found: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in p.rglob("*"):
                if f.is_file() and f.suffix.lower() in _VIDEO_EXTENSIONS and \
                        not any(part.startswith(".") for part in f.relative_to(p).parts):
                    found.add(f.resolve())
        elif p.is_file():
            found.add(p.resolve())
        else:
            raise DataError(f"{p}: no such file or folder")
    if not found:
        raise DataError(f"no video files ({', '.join(_VIDEO_EXTENSIONS)}) in "
                        f"{', '.join(str(i) for i in inputs)}")
    return sorted(found, key=str)


def clip_name(path: str | os.PathLike[str]) -> str:
    """The shard name of a video: ``<parent folder>__<stem>``, with unsafe characters as ``_``.

    Example:
        >>> clip_name("data/av_clips/grid_s1/bbaf2n.mp4")
        'grid_s1__bbaf2n'
    """
    p = Path(path)
    raw = f"{p.parent.name}__{p.stem}" if p.parent.name else p.stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw).lstrip(".")


def clip_group(path: str | os.PathLike[str], group_by: str = "auto",
               groups: Mapping[str, str] | None = None) -> str:
    """The group (speaker) id of a video; see the module docstring for the rules.

    Example:
        >>> clip_group("av_clips/grid_s1/bbaf2n.mp4"), clip_group("av_clips/more/obama.mp4")
        ('grid_s1', 'more__obama')
    """
    p = Path(path)
    if groups:
        for key in (clip_name(p), p.name, p.stem):
            if key in groups:
                return str(groups[key])
    if group_by == "folder":
        return p.parent.name or clip_name(p)
    if group_by == "file":
        return clip_name(p)
    if group_by != "auto":
        raise ValueError(f"group_by must be 'auto', 'folder' or 'file', got {group_by!r}")
    return p.parent.name if _SPEAKER_FOLDER.match(p.parent.name) else clip_name(p)


def parse_shard(text: str | Sequence[int] | None) -> tuple[int, int]:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)`` with ``0 <= i < n``; ``None`` -> ``(0, 1)``.

    Example:
        >>> parse_shard("1/4")
        (1, 4)
    """
    if text is None:
        return 0, 1
    if isinstance(text, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"shard must look like i/n (e.g. 0/4), got {text!r}")
        i, n = int(m.group(1)), int(m.group(2))
    else:
        i, n = (int(v) for v in text)
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard i/n needs 0 <= i < n, got {i}/{n}")
    return i, n


def select_shard(files: Sequence[Path], shard: tuple[int, int] | str | None) -> list[Path]:
    """Every n-th of the sorted ``files``, starting at ``i``, for ``shard = (i, n)``.

    Example:
        >>> select_shard([Path(c) for c in "abcde"], (1, 2))
        [PosixPath('b'), PosixPath('d')]
    """
    i, n = parse_shard(shard)
    return list(sorted(files, key=str))[i::n]


def load_groups(groups: Mapping[str, str] | str | os.PathLike[str] | None) -> dict[str, str]:
    """A clip -> group (speaker) mapping from a dict or a JSON file (``None``: empty).

    Example:
        >>> load_groups({"clip1": 7})
        {'clip1': '7'}
    """
    if groups is None:
        return {}
    if isinstance(groups, Mapping):
        return {str(k): str(v) for k, v in groups.items()}
    p = Path(groups)
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: cannot read the groups JSON ({e})") from e
    if not isinstance(doc, dict):
        raise DataError(f"{p}: groups JSON must be an object {{clip: group}}")
    return {str(k): str(v) for k, v in doc.items()}


# --------------------------------------------------------------------------- one clip
def _openface_csv_for(video: Path, openface_dir: Path) -> Path:
    for cand in (openface_dir / f"{video.stem}.csv", openface_dir / f"{clip_name(video)}.csv"):
        if cand.is_file():
            return cand
    raise DataError(f"{video}: no OpenFace CSV {video.stem}.csv in {openface_dir}")


def _mediapipe_targets(video: Path, teacher: Any, n_frames: int, max_seconds: float | None
                       ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    from ..render.video import iter_video_frames
    from ..teachers.mediapipe import blendshapes_to_au17

    frames: Iterable[Any] = iter_video_frames(video)
    if max_seconds is not None:
        limit = max_seconds + 0.2

        def _cut(it: Iterable[Any]) -> Iterable[Any]:
            for f in it:
                if f.time > limit:
                    break
                yield f

        frames = _cut(frames)
    track = teacher.observe_video(frames)
    if len(track) == 0:
        raise DataError(f"{video}: no video frames decoded")
    au = blendshapes_to_au17(track.blendshapes)
    lm = track.landmarks68("stable")
    values = np.concatenate([au, lm, track.blendshapes], axis=1)
    grid, mask = to_frame_grid(track.times, values, track.found, n_frames, FPS)
    arrays = {
        "targets_au17": grid[:, :17],
        "targets_landmarks68": grid[:, 17:153],
        "blendshapes": grid[:, 153:],
    }
    steps = np.diff(track.times)
    info = {
        "video_frames": int(len(track)),
        "video_fps": round(float(1.0 / np.median(steps)), 4) if len(steps) else None,
        "video_found_fraction": round(float(track.found.mean()), 4),
        "targets": ["au17", "landmarks68", "blendshapes"],
    }
    return arrays, mask, info


def _openface_targets(video: Path, csv_path: Path, n_frames: int
                      ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    from ..render.video import iter_video_frames
    from ..teachers.mediapipe import stable_face_boxes

    track = read_openface_csv(csv_path)
    # OpenFace's timestamp 0 is the first video frame; move it onto the audio clock
    first = next(iter(iter_video_frames(video, max_frames=1)), None)
    offset = first.time if first is not None else 0.0
    times = track.times - track.times[0] + offset
    values = track.aus
    targets = ["au17"]
    if track.landmarks68 is not None:
        xy = np.stack([track.landmarks68[:, :68], track.landmarks68[:, 68:]], axis=-1)
        box = stable_face_boxes(xy, track.valid)
        size = np.maximum(box[:, None, 2:4] - box[:, None, 0:2], 1e-9)
        n = (xy - box[:, None, 0:2]) / size
        values = np.concatenate([values, n[..., 0], n[..., 1]], axis=1)
        targets.append("landmarks68")
    grid, mask = to_frame_grid(times, values, track.valid, n_frames, FPS)
    lm = grid[:, 17:153] if track.landmarks68 is not None else np.zeros((n_frames, 136), np.float32)
    arrays = {"targets_au17": grid[:, :17], "targets_landmarks68": lm,
              "blendshapes": np.zeros((n_frames, 52), np.float32)}
    info = {"openface_csv": str(csv_path), "video_frames": len(track),
            "video_fps": round(float(track.fps), 4),
            "video_found_fraction": round(float(track.valid.mean()), 4), "targets": targets}
    return arrays, mask, info


def _prepare_one(video: Path, out_dir: Path, *, teacher_kind: str, teacher: Any,
                 openface_dir: Path | None, fx: Any, group: str, teacher_name: str,
                 max_seconds: float | None, input_root: str | None) -> dict[str, Any]:
    import torch

    from ..render.video import read_video_audio

    audio = read_video_audio(video)
    if audio is None:
        raise DataError(f"{video}: has no audio stream")
    if max_seconds is not None:
        audio = audio[: int(max_seconds * 16000)]
    n_frames = len(audio) // SAMPLES_PER_FRAME
    if n_frames < 2:
        raise DataError(f"{video}: audio too short ({len(audio)} samples at 16 kHz)")
    audio = audio[: n_frames * SAMPLES_PER_FRAME].contiguous()
    with torch.no_grad():
        feats = fx(audio).numpy().astype(np.float32)
    if feats.shape[-1] != n_frames:
        raise DataError(f"{video}: features have {feats.shape[-1]} frames, expected {n_frames}")
    if teacher_kind == "mediapipe":
        arrays, mask, info = _mediapipe_targets(video, teacher, n_frames, max_seconds)
    else:
        assert openface_dir is not None
        arrays, mask, info = _openface_targets(video, _openface_csv_for(video, openface_dir),
                                               n_frames)
    arrays.update(audio=audio.numpy(), features=feats, mask=mask)
    meta = {
        "source": str(video),
        "source_rel": os.path.relpath(video, input_root) if input_root else video.name,
        "speaker": group,
        "n_frames": n_frames,
        "seconds": round(len(audio) / 16000.0, 4),
        "fps": FPS,
        "sample_rate": 16000,
        "teacher": teacher_name,
        "features": {"name": fx.name, **fx.config()},
        "valid_fraction": round(float(mask.mean()), 4),
        **info,
    }
    return write_clip(out_dir, clip_name(video), arrays, meta)


# --------------------------------------------------------------------------- driver
def prepare_av(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
               teacher: str = "mediapipe", openface_dir: str | os.PathLike[str] | None = None,
               model_path: str | os.PathLike[str] | None = None,
               shard: tuple[int, int] | str | None = None, overwrite: bool = False,
               progress: bool = True, group_by: str = "auto",
               groups: Mapping[str, str] | str | os.PathLike[str] | None = None,
               features: str = "logmel", max_seconds: float | None = None,
               strict: bool = False) -> list[dict[str, Any]]:
    """Prepare talking-face videos as training clips in ``out_dir`` (see module docstring).

    Args:
        inputs: video files and/or folders (searched recursively).
        out_dir: shard folder to write (``NAME.npz`` per clip + manifest).
        teacher: ``"mediapipe"`` (AU proxy + landmarks + blendshapes) or ``"openface"``.
        openface_dir: folder of OpenFace CSVs named by video stem (``teacher="openface"``).
        model_path: FaceLandmarker bundle (default: found or downloaded automatically).
        shard: ``(i, n)`` or ``"i/n"``: process files ``i, i+n, i+2n ...`` of the sorted list.
        overwrite: redo clips that already exist.
        progress: tqdm progress bar.
        group_by: ``"auto"``, ``"folder"`` or ``"file"`` (speaker/group id rule).
        groups: explicit ``{clip name | file name | stem: group}`` (dict or JSON file).
        features: feature extractor name (``create_features``).
        max_seconds: only use the first seconds of every clip (quick runs, tests).
        strict: raise on the first failing clip instead of logging it and going on.

    Returns:
        The manifest records of this shard's clips (written now or already present), sorted by
        name. Failures are logged and listed under ``failed`` in the manifest part.

    Raises:
        DataError: no inputs, clip name clash, unknown teacher, missing ``openface_dir``.

    Example:
        >>> recs = prepare_av(["av_clips/grid_s1"], "shards", shard="0/4")   # doctest: +SKIP
        >>> {r["speaker"] for r in recs}                                       # doctest: +SKIP
        {'grid_s1'}
    """
    from ..audio.features import create_features

    if teacher not in ("mediapipe", "openface"):
        raise DataError(f"unknown teacher {teacher!r} (choose mediapipe or openface)")
    of_dir = Path(openface_dir) if openface_dir is not None else None
    if teacher == "openface" and (of_dir is None or not of_dir.is_dir()):
        raise DataError(f"teacher 'openface' needs openface_dir with one CSV per video "
                        f"(got {openface_dir})")
    i, n = parse_shard(shard)
    all_files = find_videos(inputs)
    names: dict[str, Path] = {}
    for f in all_files:
        other = names.setdefault(clip_name(f), f)
        if other != f:
            raise DataError(f"clip name clash: {other} and {f} both map to {clip_name(f)!r}; "
                            "rename one or prepare them into different folders")
    files = all_files[i::n]
    group_map = load_groups(groups)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roots = [str(Path(p).resolve()) for p in inputs if Path(p).is_dir()]
    fx = create_features(features)
    teacher_name = "openface"
    if teacher == "mediapipe":
        from ..teachers.mediapipe import PROXY_NAME

        teacher_name = PROXY_NAME
    part = None if n == 1 else f"{i}of{n}"
    extra = {"tool": "speechface prepare av", "teacher": teacher_name, "fps": FPS,
             "features": {"name": fx.name, **fx.config()}, "shard": f"{i}/{n}"}
    mp_teacher: Any = None
    records: dict[str, dict[str, Any]] = {}
    failed: list[dict[str, str]] = []
    n_written = n_skipped = 0
    t_start = time.time()
    bar: Any = files
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(files, desc=f"prepare av {i}/{n}", unit="clip")
    try:
        for video in bar:
            name = clip_name(video)
            target = out / f"{name}.npz"
            if not overwrite and target.exists() and clip_is_complete(target):
                try:
                    _, rec = read_clip(target)
                    records[name] = rec
                    n_skipped += 1
                    continue
                except DataError:
                    pass  # unreadable record: prepare it again
            if teacher == "mediapipe" and mp_teacher is None:
                from ..teachers.mediapipe import MediaPipeTeacher

                mp_teacher = MediaPipeTeacher(model_path, running_mode="video")
            root = next((r for r in roots if str(video).startswith(r + os.sep)), None)
            try:
                rec = _prepare_one(video, out, teacher_kind=teacher, teacher=mp_teacher,
                                   openface_dir=of_dir, fx=fx,
                                   group=clip_group(video, group_by, group_map),
                                   teacher_name=teacher_name, max_seconds=max_seconds,
                                   input_root=root)
            except SpeechfaceError as e:
                if strict:
                    raise
                log.warning("skipping %s: %s", video, e)
                failed.append({"file": str(video), "error": str(e)})
                continue
            records[name] = rec
            n_written += 1
            write_manifest(out, list(records.values()), part, **extra, failed=failed)
    finally:
        if mp_teacher is not None:
            mp_teacher.close()
    write_manifest(out, list(records.values()), part, **extra, failed=failed)
    if part is not None:
        rebuild_manifest(out, **{k: v for k, v in extra.items() if k != "shard"})
    log.info("prepare av %d/%d: %d written, %d skipped, %d failed in %.1f s",
             i, n, n_written, n_skipped, len(failed), time.time() - t_start)
    return [records[k] for k in sorted(records)]


