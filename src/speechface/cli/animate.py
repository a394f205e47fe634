"""``speechface animate``: speech + a face photo -> a talking-face video.

The command's parser and handler; the work is :func:`speechface.render.animate.animate` and
:meth:`speechface.Animation.save`.

Example:
    >>> parser = argparse.ArgumentParser(); add_parsers(parser.add_subparsers())
    >>> args = parser.parse_args(["animate", "speech.wav", "photo.jpg", "-o", "talking.mp4"])
    >>> args.func.__name__, args.smoothing
    ('run_animate', 0.0)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from ..core._io import check_output
from ..core.errors import SpeechfaceError
from ..core.threads import limit_threads
from ..render.animate import animate
from ..render.face import quiet_native_logs
from ..render.result import Animation
from ..render.video import IMAGE_FORMATS, VIDEO_FORMATS
from .main import add_common_options, check_device, check_duration

__all__ = ["add_parsers", "run_animate", "fast_options", "animate_and_save", "MAX_SECONDS"]

#: ``speechface animate`` refuses longer speech up front (``--max-seconds``): one hour.
MAX_SECONDS = 3600.0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``speechface animate`` sub-command to the CLI's sub-parsers.

    Example:
        >>> parser = argparse.ArgumentParser(); add_parsers(parser.add_subparsers())
    """
    p = sub.add_parser(
        "animate", help="speech + face photo -> talking-face video (mp4 with sound, gif, webp)",
        description="Animate the face in a photo with speech: predict AUs/emotions from the "
                    "speech at 25 fps, translate the face once per frame and paste it back.")
    p.add_argument("speech", help="speech file (wav, flac, ogg, mp3; a video's audio track)")
    p.add_argument("image", help="photo with a face (jpg, png, webp ...)")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .mp4 (H.264 + AAC with the speech), .gif or .webp")
    p.add_argument("--model", default=None,
                   help="speech estimator: packaged name, model folder or Hub repo id "
                        "(default: the packaged default for the translator's space)")
    p.add_argument("--translator", default=None,
                   help="face translator: packaged name, model folder or Hub repo id "
                        "(default: the packaged default)")
    p.add_argument("--smoothing", type=float, default=0.0,
                   help="temporal smoothing: Gaussian sigma in frames of 40 ms (default 0 = off)")
    p.add_argument("--fast", action="store_true",
                   help="bf16 translator where the CPU supports it (about 2x; within a few "
                        "pixel levels of fp32)")
    p.add_argument("--reuse-tolerance", type=float, default=None, metavar="T",
                   help="with --fast: reuse the previous frame while no condition moved more than T")
    p.add_argument("--expressiveness", type=float, default=1.0,
                   help="widen the predicted movement around its mean (default 1 = as predicted)")
    p.add_argument("--space", choices=["au17", "emotion8", "landmarks68"], default=None,
                   help="conditioning space when no model is given: packaged estimator (and for "
                        "landmarks68 the landmark translator) for it (default au17)")
    p.add_argument("--no-dynamics", action="store_true",
                   help="do not apply the estimator's recorded dynamics gain")
    p.add_argument("--no-lipsync", action="store_true",
                   help="au17/emotion8: no landmark-driven mouth motion on top of the "
                        "expression (default: on with the packaged models)")
    p.add_argument("--no-mouth-sync", action="store_true",
                   help="au17: drive the mouth with the speech model's own AU25/AU26 (default: "
                        "one track from the AU and ARKit models, given real mouths' spread and "
                        "the photo's jaw response; see speechface.render.mouth_sync)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="expression strength relative to neutral (default 1; 0 = neutral)")
    p.add_argument("--emotion", default=None,
                   help="add an emotion's FACS prototype (happiness, sadness, surprise, anger, "
                        "disgust, fear, contempt); the jaw keeps the speech")
    p.add_argument("--intensity", type=float, default=1.0,
                   help="strength of --emotion (default 1 = FACS level C)")
    p.add_argument("--hold-expression", nargs="?", const="default", default=None,
                   metavar="MODEL",
                   help="hold one expression for the utterance, predicted by an utterance-level "
                        "au17 model (default: the packaged lstm_mfcc model)")
    p.add_argument("--side-by-side", action="store_true",
                   help="show the input photo left of the animation")
    p.add_argument("--face-index", type=int, default=None,
                   help="which face to animate, 0 = leftmost (default: the largest)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="frames per translator call; also how many rendered faces are held in "
                        "memory (default 16)")
    add_common_options(p, max_seconds=MAX_SECONDS)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="show the native log lines of MediaPipe / TFLite (hidden by default)")
    p.set_defaults(func=run_animate)


def fast_options(args: argparse.Namespace) -> Any:
    if not args.fast:
        if args.reuse_tolerance is not None:
            raise ValueError("--reuse-tolerance needs --fast")
        return None
    from ..render.fastpath import FastOptions

    return FastOptions.fastest(skip_tolerance=args.reuse_tolerance or 0.0)


def run_animate(args: argparse.Namespace) -> int:
    """Handler of ``speechface animate``: check the arguments, animate, save, report; returns 0."""

    # everything the user typed is checked before any work
    out = check_output(args.output, inputs=[args.speech, args.image, args.model,
                                            args.translator],
                       suffixes=VIDEO_FORMATS + IMAGE_FORMATS, what="output")
    device = check_device(args.device)
    if args.face_index is not None and args.face_index < 0:
        raise SpeechfaceError(f"--face-index {args.face_index}: faces are counted from 0 (the "
                              "leftmost); leave it out for the largest face")
    if args.batch_size < 1:
        raise SpeechfaceError(f"--batch-size {args.batch_size}: must be at least 1")
    check_duration(args.speech, args.max_seconds)
    quiet_native_logs(not args.verbose)
    estimator = translator = None
    if args.translator is not None:
        from ..render.translators import Translator

        translator = Translator.from_pretrained(args.translator).to(device)
    if args.model is not None:
        from ..speech.model import SpeechEstimator

        estimator = SpeechEstimator.from_pretrained(args.model).to(device)
    threads = limit_threads(args.threads) if args.threads else contextlib.nullcontext()
    with threads:
        anim = animate_and_save(args, estimator, translator, out, device)
    w, h = anim.size
    face = "" if (anim.n_faces or 0) <= 1 else (
        f", face {anim.face_index} of {anim.n_faces} (0-{anim.n_faces - 1} left to right"
        f"{'; the largest' if args.face_index is None else ''})")

    def kind(which: str) -> str:
        return "" if anim.info.get(f"{which}_pretrained") else " [RANDOM WEIGHTS]"

    print(f"wrote {args.output}: {len(anim)} frames {w}x{h} at {anim.fps:g} fps "
          f"({anim.duration:.2f} s){face}; estimator {anim.info.get('estimator')}"
          f"{kind('estimator')}, translator {anim.info.get('translator')}{kind('translator')}",
          file=sys.stderr)
    return 0


def animate_and_save(args: argparse.Namespace, estimator: Any, translator: Any, out: Any,
                      device: str) -> Animation:
    """:func:`speechface.animate` with the command line's options, saved to ``out``."""
    anim = animate(args.speech, args.image, estimator, translator, smoothing=args.smoothing,
                   strength=args.strength, expressiveness=args.expressiveness,
                   dynamics=not args.no_dynamics, space=args.space, fast=fast_options(args),
                   lipsync=False if args.no_lipsync else None,
                   mouth_sync=not args.no_mouth_sync,
                   side_by_side=args.side_by_side,
                   face_index=args.face_index, batch_size=args.batch_size,
                   progress=not args.quiet, emotion=args.emotion, intensity=args.intensity,
                   hold_expression=(True if args.hold_expression == "default"
                                    else args.hold_expression),
                   device=device)
    anim.save(out)
    return anim
