"""``speechface prepare``: raw data -> training shards (``prepare av``, ``faces``, ``frames``,
``augment``, ``prototypes``, ``emotion``).

Every sub-command's parser and handler is here; the work is done by the functions of
:mod:`speechface.data` that each handler calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ..data.augment import augment_shards, groups_from_config
from ..data.emotion_targets import add_emotion_targets
from ..data.prepare import parse_shard, prepare_av
from ..data.prepare_faces import prepare_faces
from ..data.prepare_frames import LFW_MARGIN, LFW_SHIFT, prepare_frames
from ..data.prototype_targets import prepare_ravdess_prototypes
from ..data.shards import list_clips

__all__ = ["build_prepare_parser", "PREPARE_SUBCOMMANDS", "run_prepare_av",
           "build_prepare_faces_parser",
           "run_prepare_faces", "build_prepare_frames_parser", "run_prepare_frames",
           "build_prepare_augment_parser", "run_prepare_augment", "build_prepare_prototypes_parser",
           "run_prepare_prototypes", "build_prepare_emotion_parser", "run_prepare_emotion"]


def build_prepare_parser(subparsers: Any) -> Any:
    """Add ``prepare`` (with the ``av`` sub-command) to an argparse sub-parsers object.

    ``speechface prepare av INPUT... -o OUT [--teacher mediapipe|openface] [--openface-dir D]
    [--model PATH] [--shard i/n] [--overwrite] [--group-by auto|folder|file] [--groups JSON]
    [--max-seconds S] [--quiet]``

    The other ``prepare`` sub-commands are added next to ``av`` by the functions in
    :data:`PREPARE_SUBCOMMANDS` (each ``f(prepare_subparsers)``); more can be added by calling
    ``add_parser`` on the returned object.

    Returns:
        The ``prepare`` command's own sub-parsers object.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers(dest="command")
        >>> _ = build_prepare_parser(sub)
        >>> args = parser.parse_args(["prepare", "av", "clips", "-o", "out", "--shard", "1/2"])
        >>> args.func.__name__, args.shard
        ('run_prepare_av', '1/2')
    """
    prep = subparsers.add_parser("prepare", help="turn raw data into training shards",
                                 description="Prepare training data (shards of .npz clips).")
    psub = prep.add_subparsers(dest="prepare_command", metavar="WHAT")
    psub.required = True
    p = psub.add_parser(
        "av", help="talking-face videos -> speech features + per-frame face targets",
        description="Read talking-face videos, compute 25 fps log-mel features of the speech, "
                    "label every video frame with a teacher (MediaPipe AU proxy, landmarks68 and "
                    "blendshapes, or OpenFace CSVs) and write one .npz per clip plus a manifest.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files or folders")
    p.add_argument("-o", "--output", required=True, help="shard folder to write")
    p.add_argument("--teacher", choices=["mediapipe", "openface"], default="mediapipe")
    p.add_argument("--openface-dir", default=None, help="OpenFace CSVs named <video stem>.csv")
    p.add_argument("--model", default=None, help="face_landmarker.task (default: auto)")
    p.add_argument("--shard", default=None, metavar="i/n",
                   help="process every n-th file starting at i (0 <= i < n)")
    p.add_argument("--overwrite", action="store_true", help="redo clips that already exist")
    p.add_argument("--group-by", choices=["auto", "folder", "file"], default="auto",
                   help="speaker/group id: speaker-like parent folder, else the clip (auto)")
    p.add_argument("--groups", default=None, metavar="JSON",
                   help="JSON object {clip name|file|stem: group} overriding --group-by")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="only the first seconds of every clip (quick test runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare_av)
    for add in PREPARE_SUBCOMMANDS:
        add(psub)
    return psub


def build_prepare_prototypes_parser(psub: Any) -> None:
    """Add ``prepare prototypes`` to the ``prepare`` sub-parsers."""
    p = psub.add_parser(
        "prototypes", help="RAVDESS utterances with the FACS prototype AUs of their emotion",
        description="Write RAVDESS speech clips as shards whose AU target is the EMFACS "
                    "prototype of the acted emotion scaled by its intensity (normal 0.6, strong 1).")
    p.add_argument("root", help="the RAVDESS folder (Actor_XX/*.flac)")
    p.add_argument("-o", "--output", required=True, help="shard folder to write")
    p.add_argument("--exclude-actors", nargs="*", type=int, default=[],
                   help="actors to leave out entirely (e.g. the test actors)")
    p.set_defaults(func=run_prepare_prototypes)


def run_prepare_prototypes(args: argparse.Namespace) -> int:
    recs = prepare_ravdess_prototypes(args.root, args.output, exclude_actors=args.exclude_actors)
    print(f"{len(recs)} clips in {args.output}", file=sys.stderr)
    return 0


def build_prepare_frames_parser(prepare_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``frames`` to the ``speechface prepare`` sub-parsers.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = build_prepare_frames_parser(sub)
        >>> parser.parse_args(["frames", "clips", "-o", "out"]).size
        64
    """
    p = prepare_subparsers.add_parser(
        "frames", help="talking-face videos -> labelled face crops (paired translator data)",
        description="Crop the face of every kept frame of talking-face videos (one crop box "
                    "per clip, LFW framing), label it with the MediaPipe teacher (au17 proxy and "
                    "68 landmarks) and write one npz per clip plus a manifest.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files or folders")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--size", type=int, default=64, help="crop side in pixels (default 64)")
    p.add_argument("--stride", type=int, default=2, help="keep every n-th frame (default 2)")
    p.add_argument("--max-frames", type=int, default=None, help="kept frames per clip at most")
    p.add_argument("--margin", type=float, default=LFW_MARGIN)
    p.add_argument("--shift", type=float, default=LFW_SHIFT)
    p.add_argument("--groups", default=None, help="JSON {clip name: group} (as prepare av)")
    p.add_argument("--group-by", choices=["auto", "folder", "file"], default="auto")
    p.add_argument("--shard", default=None, help="i/n: this writer's share of the videos")
    p.add_argument("--model", default=None, help="face_landmarker.task (default: auto)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_prepare_frames)
    return p


def run_prepare_frames(args: argparse.Namespace) -> int:
    """Handler of ``speechface prepare frames``; prints a one-line summary on stderr."""
    info = prepare_frames(args.inputs, args.output, size=args.size, stride=args.stride,
                          margin=args.margin, shift=args.shift, max_frames=args.max_frames,
                          groups=args.groups, group_by=args.group_by, shard=args.shard,
                          model_path=args.model, overwrite=args.overwrite,
                          progress=not args.quiet)
    print(f"{info['out_dir']}: {info['n_written']} clips written ({info['n_frames']} frames), "
          f"{info['n_kept']} kept, {info['n_skipped']} without a face, in "
          f"{info['seconds']:.0f} s", file=sys.stderr)
    return 0


def build_prepare_faces_parser(prepare_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``faces`` to the ``speechface prepare`` sub-parsers.

    ``speechface prepare faces DIR -o labels.csv [--expression NAME] [--landmarks]
    [--model PATH] [--recursive] [--min-confidence C] [--quiet]``

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = build_prepare_faces_parser(sub)
        >>> args = parser.parse_args(["faces", "imgs", "-o", "aus.csv"])
        >>> args.func.__name__, args.output
        ('run_prepare_faces', 'aus.csv')
    """
    p = prepare_subparsers.add_parser(
        "faces", help="face images -> per-image AU CSV (MediaPipe proxy), for GANimation",
        description="Label every face image of a folder with the MediaPipe FaceLandmarker's "
                    "AU proxy (optionally emotion8) and write one OpenFace-style CSV "
                    "(image,AU01_r,...,AU45_r) readable by FaceFolder.")
    p.add_argument("image_dir", metavar="DIR", help="folder of face images")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--teacher", choices=["mediapipe"], default="mediapipe")
    p.add_argument("--expression", default=None, metavar="MODEL",
                   help="also write emotion8 columns with this ExpressionRecognizer "
                        "(name, folder or Hub id; 'default' = the packaged FER+ model)")
    p.add_argument("--model", default=None, help="face_landmarker.task (default: auto)")
    p.add_argument("--recursive", action="store_true", help="include sub-folders")
    p.add_argument("--landmarks", action="store_true",
                   help="also write the 68 landmarks x_0..x_67,y_0..y_67 (image-normalised)")
    p.add_argument("--min-confidence", type=float, default=0.5)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare_faces)
    return p


def run_prepare_faces(args: argparse.Namespace) -> int:
    """Handler of ``speechface prepare faces``; prints a one-line summary on stderr."""
    info = prepare_faces(args.image_dir, args.output, teacher=args.teacher,
                         expression=args.expression, model_path=args.model,
                         recursive=args.recursive, min_confidence=args.min_confidence,
                         landmarks=args.landmarks, progress=not args.quiet)
    print(f"wrote {info['csv']}: {info['n_labelled']} of {info['n_images']} images labelled "
          f"({info['n_no_face']} without a face) in {info['seconds']:.1f} s "
          f"({info['images_per_s']:.1f} img/s), AUs = {info['teacher']}", file=sys.stderr)
    return 0


def run_prepare_av(args: argparse.Namespace) -> int:
    """Handler of ``speechface prepare av``; returns 0, or 1 when some clips failed.

    Example:
        >>> run_prepare_av(parser.parse_args(["prepare", "av", "clips", "-o", "out"]))  # doctest: +SKIP
        0
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output)
    recs = prepare_av(args.inputs, out, teacher=args.teacher, openface_dir=args.openface_dir,
                      model_path=args.model, shard=args.shard, overwrite=args.overwrite,
                      progress=not args.quiet, group_by=args.group_by, groups=args.groups,
                      max_seconds=args.max_seconds)
    i, n = parse_shard(args.shard)
    part = out / ("manifest.json" if n == 1 else f"manifest.{i}of{n}.json")
    failed = json.loads(part.read_text()).get("failed", []) if part.is_file() else []
    frames = sum(int(r.get("n_frames", 0)) for r in recs)
    seconds = sum(float(r.get("seconds", 0.0)) for r in recs)
    total = len(list_clips(out))
    print(f"prepared {len(recs)} clips ({frames} frames, {seconds / 60:.1f} min) in {out} "
          f"[shard {i}/{n}; folder now holds {total} clips]; {len(failed)} failed",
          file=sys.stderr)
    for f in failed:
        print(f"  failed: {f['file']}: {f['error']}", file=sys.stderr)
    return 1 if failed else 0


def build_prepare_emotion_parser(psub: Any) -> None:
    """Add ``speechface prepare emotion SHARDS [-o OUT] [--expression NAME]`` to ``prepare``.

    Example (shell)::

        speechface prepare emotion prepared/av_mediapipe -o prepared/av_emotion8
    """
    p = psub.add_parser("emotion", help="add FER+ teacher targets_emotion8 to prepared shards",
                        description="Re-read each clip's source video, crop every frame's face "
                                    "(MediaPipe box), score it with the FER+ expression teacher "
                                    "and store per-frame targets_emotion8 in the clip.")
    p.add_argument("shards", help="shard folder from 'speechface prepare av'")
    p.add_argument("-o", "--output", default=None, help="write here (default: in place)")
    p.add_argument("--expression", default=None, metavar="NAME",
                   help="expression recogniser name or folder (default: the packaged FER+ model)")
    p.add_argument("--model", default=None, help="face_landmarker.task (default: auto)")
    p.add_argument("--margin", type=float, default=0.1, help="face crop margin per side")
    p.add_argument("--box-cache", default=None, metavar="DIR",
                   help="keep/reuse the MediaPipe face tracks here (a rerun skips MediaPipe)")
    p.add_argument("--box-every", type=int, default=1, metavar="N",
                   help="MediaPipe on every N-th frame, boxes interpolated between (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo clips that have targets")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare_emotion)


def run_prepare_emotion(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    recs = add_emotion_targets(args.shards, args.expression, output=args.output,
                               landmarker=args.model, margin=args.margin,
                               overwrite=args.overwrite, progress=not args.quiet,
                               box_cache=args.box_cache, box_every=args.box_every)
    print(f"{len(recs)} clips hold targets_emotion8 in {args.output or args.shards}",
          file=sys.stderr)
    return 0


def build_prepare_augment_parser(psub: Any) -> None:
    """Add ``prepare augment`` to the ``prepare`` sub-parsers."""
    p = psub.add_parser(
        "augment", help="speaker/channel augmented copies of prepared clips",
        description="Write speed-perturbed, equalised, reverberant and noisy copies of every "
                    "training clip of a shard folder (targets carried over) into another folder.")
    p.add_argument("input", help="prepared shard folder")
    p.add_argument("-o", "--output", required=True, help="folder for the augmented shards")
    p.add_argument("--copies", type=int, default=2, help="augmented versions per clip (2)")
    p.add_argument("--exclude-groups", nargs="*", default=[], metavar="GROUP",
                   help="speaker groups never augmented (held-out)")
    p.add_argument("--exclude-groups-from", default=None, metavar="CONFIG",
                   help="also exclude the val_groups of this training config (YAML)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare_augment)


def run_prepare_augment(args: argparse.Namespace) -> int:
    groups = list(args.exclude_groups)
    if args.exclude_groups_from:
        groups += groups_from_config(args.exclude_groups_from)
    recs = augment_shards(args.input, args.output, copies=args.copies, exclude_groups=groups,
                          seed=args.seed, overwrite=args.overwrite, progress=not args.quiet)
    print(f"{len(recs)} augmented clips in {args.output} ({len(set(groups))} groups excluded)",
          file=sys.stderr)
    return 0


#: The other ``speechface prepare <what>`` sub-commands, in help order: functions that add one
#: to the ``prepare`` sub-parsers.
PREPARE_SUBCOMMANDS: list[Any] = [build_prepare_faces_parser, build_prepare_frames_parser,
                                  build_prepare_augment_parser, build_prepare_prototypes_parser,
                                  build_prepare_emotion_parser]
