"""The ``speechface`` command line.

    speechface predict speech.wav -o aus.csv [--model NAME_OR_PATH] [--space au17]
    speechface predict speech.wav --space blendshapes52 -o take.csv --format livelink
    speechface stream [mic | - | FILE] [--udp PORT | --osc PORT]
    speechface models
    speechface prepare av CLIPS... -o DIR
    speechface train estimator --config cfg.yaml
    speechface animate speech.wav photo.jpg -o talking.mp4

Every failure is reported as one line on stderr (``speechface: error: ...``) with a non-zero
exit code, never a traceback; ``--debug`` (anywhere on the command line) or
``SPEECHFACE_DEBUG=1`` shows the traceback for bug reports.

Sub-commands are registered in one place, :data:`COMMANDS`: ``(module, function)`` pairs, every
module one of ``speechface.cli``; the function takes argparse's sub-parsers object and adds its
command (with ``set_defaults(func=...)``). A module that is not installed (an optional part) is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import SpeechfaceError
from ..version import __version__

__all__ = ["main", "build_parser", "COMMANDS", "add_predict_parser", "add_models_parser",
           "check_device", "add_common_options"]

#: Every sub-command: (module, function that adds it to the sub-parsers object), in help order.
COMMANDS: list[tuple[str, str]] = [
    ("speechface.cli", "add_predict_parser"),
    ("speechface.cli.animate", "add_parsers"),
    ("speechface.cli", "add_models_parser"),
    ("speechface.cli.prepare", "build_prepare_parser"),
    ("speechface.cli.train", "add_parsers"),
    ("speechface.cli.stream", "add_parsers"),
]

#: Largest number of bytes ``predict -`` copies from standard input (``--max-input-mb``).
DEFAULT_MAX_INPUT_MB = 1024


def check_device(name: str) -> str:
    """A torch device name that exists on this machine, or SpeechfaceError saying why not.

    Example:
        >>> check_device("cpu")
        'cpu'
    """
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise SpeechfaceError(f"--device {name!r}: not a torch device name (use cpu, cuda, "
                              "cuda:1, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpeechfaceError(f"--device {name}: no CUDA GPU is available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SpeechfaceError(f"--device {name}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise SpeechfaceError(f"--device {name}: Apple MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise SpeechfaceError(f"--device {name}: speechface runs on cpu, cuda or mps")
    return name


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_common_options(p: argparse.ArgumentParser, *, max_seconds: float | None) -> None:
    """``--device``, ``--threads`` and ``--max-seconds`` for a command that runs models."""
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, mps")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads for torch (default: 1 for speechface's small models, see "
                        "speechface.core.threads; env SPEECHFACE_THREADS)")
    p.add_argument("--max-seconds", type=_positive_float, default=max_seconds,
                   help="refuse speech longer than this many seconds, before any work "
                        f"(default: {'no limit' if max_seconds is None else f'{max_seconds:g}'})")


# --------------------------------------------------------------------------- predict
def add_predict_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``speechface predict``."""
    p = sub.add_parser("predict", help="speech file -> OpenFace-style CSV of AUs / emotions / landmarks",
                       description="Predict a 25 fps sequence from a speech file and write a CSV.")
    p.add_argument("audio", help="speech file (wav, flac, ogg, mp3; a video's audio track), or - "
                                 "to read the file's bytes from stdin")
    p.add_argument("-o", "--output", required=True,
                   help="CSV file to write (.csv), or - for standard output")
    p.add_argument("--model", default=None,
                   help="packaged model name, model folder or Hub repo id (default: packaged default)")
    p.add_argument("--space", default="au17",
                   choices=["au17", "emotion8", "landmarks68", "blendshapes52"],
                   help="what to predict when --model is not given (default: au17; "
                        "blendshapes52 = the 52 ARKit blendshapes)")
    p.add_argument("--format", default="csv", choices=["csv", "livelink", "json", "threejs",
                                                        "blender"],
                   help="output format: csv (OpenFace-style, default), livelink (Live Link Face "
                        "CSV), json (named curves), threejs (AnimationClip JSON), blender (a "
                        "script that keys ARKit shape keys); all but csv write ARKit-52 "
                        "blendshapes (au17/emotion8 models are converted)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of livelink/json/threejs/blender output (default 25; Live "
                        "Link Face records at 60)")
    p.add_argument("--random-weights", metavar="ARCH", default=None,
                   help="use an untrained architecture (for testing the pipeline only)")
    add_common_options(p, max_seconds=None)
    p.add_argument("--max-input-mb", type=_positive_float, default=DEFAULT_MAX_INPUT_MB,
                   help="with -: refuse more than this many MB on stdin "
                        f"(default {DEFAULT_MAX_INPUT_MB})")
    p.set_defaults(func=_run_predict)


#: Output file types of each --format.
_SUFFIXES = {"csv": (".csv",), "livelink": (".csv",), "json": (".json",),
             "threejs": (".json",), "blender": (".py",)}


def _run_predict(args: argparse.Namespace) -> int:
    from ..core._io import STDOUT, check_output
    from ..core.threads import auto_threads
    from ..pretrained import DEFAULT_MODELS
    from ..speech.model import SpeechEstimator, estimator_class

    # everything the user typed is checked before any model is loaded
    out = check_output(args.output, inputs=[args.audio, args.model],
                       suffixes=_SUFFIXES[args.format],
                       allow_stdout=args.format == "csv" and args.fps is None, what="output")
    device = check_device(args.device)
    if args.audio != "-":
        check_duration(args.audio, args.max_seconds)
    cls = estimator_class(args.space)
    if args.random_weights:
        est = cls.create(args.random_weights, space=args.space)
    elif args.model is None and args.space not in DEFAULT_MODELS:
        raise SpeechfaceError(f"no packaged default model for {args.space} in this version; pass "
                              f"--model or --random-weights ARCH")
    else:
        loader = SpeechEstimator if args.model is not None else cls
        est = loader.from_pretrained(args.model)
    est.to(device)
    with auto_threads(est, requested=args.threads):
        if args.audio == "-":  # file bytes on stdin, decoded in blocks (speechface.speech.longform)
            from ..speech.longform import predict_stdin

            stream = _LimitedInput(sys.stdin.buffer, int(args.max_input_mb * 1e6))
            result = predict_stdin(est, stream)
            if args.max_seconds is not None and len(result) / result.fps > args.max_seconds:
                raise SpeechfaceError(f"audio on stdin lasts {len(result) / result.fps:.0f} s, "
                                      f"more than --max-seconds {args.max_seconds:g}")
        else:
            result = est.predict(args.audio)
    if out == STDOUT:
        result.to_csv(sys.stdout)
        sys.stdout.flush()
    elif args.format == "csv" and args.fps is None:
        result.to_csv(out)
    else:  # avatar formats (speechface.avatars.exporters)
        from ..avatars.exporters import export_track

        export_track(result, out, args.format, fps=args.fps,
                     audio=None if args.audio == "-" else str(Path(args.audio).resolve()))
    kind = "pretrained" if est.pretrained else "RANDOM WEIGHTS (untrained)"
    where = "standard output" if out == STDOUT else args.output
    print(f"wrote {where}: {len(result)} frames at {result.fps:g} fps, {result.space}, "
          f"model {est.name} [{kind}]", file=sys.stderr)
    return 0


def check_duration(path: str, max_seconds: float | None, what: str = "speech") -> float | None:
    """The duration of an audio (or video) file from its header, refusing one longer than
    ``max_seconds``; None when the header does not say (the loader then reports problems).

    Example:
        >>> check_duration("speech.wav", 60.0)     # doctest: +SKIP
        4.42
    """
    import soundfile as sf

    seconds = None
    try:
        info = sf.info(str(path))
        if info.samplerate > 0:
            seconds = info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - not for libsndfile: ask PyAV, else let the loader explain
        seconds = _container_seconds(path)
    if seconds is not None and max_seconds is not None and seconds > max_seconds:
        raise SpeechfaceError(f"{what} '{path}' lasts {seconds:.0f} s ({seconds / 60:.1f} min), "
                              f"more than --max-seconds {max_seconds:g}; cut it or raise the "
                              "limit")
    return seconds


def _container_seconds(path: str) -> float | None:
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as c:
            return float(c.duration) / 1e6 if c.duration else None
    except Exception:  # noqa: BLE001 - unreadable: the loader reports it
        return None


class _LimitedInput:
    """A binary stream that refuses to give more than ``limit`` bytes, and refuses a start of
    zeros (``/dev/zero``) that no audio format has."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        n = self.limit + 1 - self.count if n is None or n < 0 else min(n, self.limit + 1 -
                                                                        self.count)
        data = self.raw.read(max(n, 0)) if n > 0 else b""
        if self.count == 0 and len(data) >= 64 and not data[:4096].strip(b"\0"):
            raise SpeechfaceError("audio on stdin starts with zero bytes, which no audio file "
                                  "does; pipe an audio file, e.g. 'speechface predict - -o "
                                  "aus.csv < speech.wav'")
        self.count += len(data)
        if self.count > self.limit:
            raise SpeechfaceError(f"audio on stdin is larger than --max-input-mb "
                                  f"{self.limit / 1e6:g} MB; refusing to read more")
        return data


# --------------------------------------------------------------------------- models
def add_models_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``speechface models``."""
    p = sub.add_parser("models", help="list what each registry holds and the packaged models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'cnn*'")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from ..core.registry import REGISTRIES
    from ..pretrained import DEFAULT_MODELS, list_pretrained, pretrained_info

    for family, reg in REGISTRIES.items():
        names = reg.list(args.pattern)
        print(f"{family}: {', '.join(names) if names else '(none)'}")
    print("pretrained:")
    defaults = {v: k for k, v in DEFAULT_MODELS.items()}
    for name in list_pretrained():
        info = pretrained_info(name)
        mark = f"  [default for {defaults[name]}]" if name in defaults else ""
        print(f"  {name}  ({info.get('kind')}, {info.get('architecture')}, "
              f"{info.get('space', info.get('condition', ''))}){mark}")
    return 0


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="speechface", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"speechface {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also SPEECHFACE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod, fn in COMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:  # an optional part that is not there
            if e.name is None or not mod.startswith(e.name):
                raise
            continue
        getattr(module, fn)(sub)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _describe(e: BaseException) -> str:
    """One line for an exception the CLI did not raise on purpose."""
    if isinstance(e, SpeechfaceError):
        return _one_line(str(e))
    if isinstance(e, MemoryError):
        return ("out of memory " + (f"({_one_line(str(e))}) " if str(e) else "") +
                "; try a shorter input or smaller --batch-size")
    if isinstance(e, OSError) and e.filename is not None:
        return _one_line(f"'{e.filename}': {e.strerror or e}")
    if isinstance(e, (OSError, ValueError)):
        return _one_line(str(e))
    return _one_line(f"{type(e).__name__}: {e} (a bug? run with --debug and report the "
                     "traceback)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``speechface`` command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    cut = args_list.index("--") if "--" in args_list else len(args_list)
    debug = "--debug" in args_list[:cut] or os.environ.get("SPEECHFACE_DEBUG", "") not in ("",
                                                                                          "0")
    args_list = [a for i, a in enumerate(args_list) if not (a == "--debug" and i < cut)]
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("speechface: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure becomes one line
        if debug:
            traceback.print_exc()
        print(f"speechface: error: {_describe(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
