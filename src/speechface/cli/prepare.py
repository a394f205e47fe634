"""``speechface prepare``: raw data -> training shards (``prepare av`` and the other
``prepare <what>`` sub-commands).

The command's parser; the work and the ``prepare av`` handler are in
:mod:`speechface.data.prepare`, the other sub-commands' parsers in the data modules named in
:data:`PREPARE_SUBCOMMANDS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..data.prepare import run_prepare_av

__all__ = ["build_prepare_parser", "PREPARE_SUBCOMMANDS"]


#: Other ``speechface prepare <what>`` sub-commands: (module, function taking the sub-parsers).
#: A module that is missing is skipped, so optional parts can register themselves here.
PREPARE_SUBCOMMANDS: list[tuple[str, str]] = [
    ("speechface.data.prepare_faces", "build_prepare_faces_parser"),
    ("speechface.data.prepare_frames", "build_prepare_frames_parser"),
    ("speechface.data.augment", "build_prepare_augment_parser"),
    ("speechface.data.prototype_targets", "build_prepare_prototypes_parser"),
    ("speechface.data.emotion_targets", "build_prepare_emotion_parser"),
]


def build_prepare_parser(subparsers: Any) -> Any:
    """Add ``prepare`` (with the ``av`` sub-command) to an argparse sub-parsers object.

    ``speechface prepare av INPUT... -o OUT [--teacher mediapipe|openface] [--openface-dir D]
    [--model PATH] [--shard i/n] [--overwrite] [--group-by auto|folder|file] [--groups JSON]
    [--max-seconds S] [--quiet]``

    More ``prepare`` sub-commands are added next to ``av`` by the modules in
    :data:`PREPARE_SUBCOMMANDS` (each with a function ``f(prepare_subparsers)``), or by calling
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
    for mod, fn in PREPARE_SUBCOMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is None or not mod.startswith(e.name):
                raise
            continue
        if hasattr(module, fn):
            getattr(module, fn)(psub)
    return psub
