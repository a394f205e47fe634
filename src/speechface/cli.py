"""The ``speechface`` command line.

    speechface predict speech.wav -o aus.csv [--model NAME_OR_PATH] [--space au17]
    speechface predict speech.wav --space blendshapes52 -o take.csv --format livelink
    speechface stream [mic | - | FILE] [--udp PORT | --osc PORT]
    speechface models
    speechface prepare av CLIPS... -o DIR
    speechface train estimator --config cfg.yaml
    speechface evaluate ...

Errors are reported as one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import SpeechfaceError

__all__ = ["main", "build_parser"]

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def subcommand(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[..., None]:  # type: ignore[type-arg]
    """Register a function that adds a sub-command parser (with ``set_defaults(func=...)``)."""
    _SUBCOMMANDS.append(fn)
    return fn


# --------------------------------------------------------------------------- predict
@subcommand
def _add_predict(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="speech file -> OpenFace-style CSV of AUs / emotions / landmarks",
                       description="Predict a 25 fps sequence from a speech file and write a CSV.")
    p.add_argument("audio", help="speech file (wav, flac, ogg, mp3), or - to read the file's "
                                 "bytes from stdin")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
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
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from .pretrained import DEFAULT_MODELS
    from .speech import SpeechEstimator, _class_for

    cls = _class_for(args.space)
    if args.random_weights:
        est = cls.create(args.random_weights, space=args.space)
    elif args.model is None and args.space not in DEFAULT_MODELS:
        raise SpeechfaceError(f"no packaged default model for {args.space} in this version; pass "
                              f"--model or --random-weights ARCH")
    else:
        loader = SpeechEstimator if args.model is not None else cls
        est = loader.from_pretrained(args.model)
    est.to(args.device)
    if args.audio == "-":  # file bytes on stdin, decoded in blocks (speechface.longform)
        from .longform import predict_stdin

        result = predict_stdin(est)
    else:
        result = est.predict(args.audio)
    if args.format == "csv" and args.fps is None:
        result.to_csv(args.output)
    else:  # avatar formats (speechface.exporters)
        from .exporters import export_track

        export_track(result, args.output, args.format, fps=args.fps,
                     audio=None if args.audio == "-" else str(Path(args.audio).resolve()))
    kind = "pretrained" if est.pretrained else "RANDOM WEIGHTS (untrained)"
    print(f"wrote {args.output}: {len(result)} frames at {result.fps:g} fps, {result.space}, "
          f"model {est.name} [{kind}]", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- models
@subcommand
def _add_models(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list what each registry holds and the packaged models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'cnn*'")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from .pretrained import DEFAULT_MODELS, list_pretrained, pretrained_info
    from .registry import REGISTRIES

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
    parser = argparse.ArgumentParser(prog="speechface", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"speechface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    _load_plugins(sub)
    return parser


#: Modules that add sub-commands, and the function in each that takes the sub-parsers object.
_PLUGINS = [
    ("speechface.data.prepare", "build_prepare_parser"),
    ("speechface.training.cli", "add_parsers"),
    ("speechface.animate", "add_parsers"),
    ("speechface.live", "add_parsers"),
]


def _load_plugins(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    import importlib

    for mod, fn in _PLUGINS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:  # an optional part that is not there
            if e.name is None or not mod.startswith(e.name):
                raise
            continue
        if hasattr(module, fn):
            getattr(module, fn)(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``speechface`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpeechfaceError as e:
        print(f"speechface: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # e.g. unwritable output path, bad argument value
        name = Path(getattr(e, "filename", "") or "").name
        print(f"speechface: error: {name + ': ' if name else ''}{e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("speechface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
