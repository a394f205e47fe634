"""``speechface stream``: live speech (microphone, stdin or a file) -> one frame of values every
40 ms as JSON lines, UDP or OSC.

The command's parser and handler; the sources, sinks and loop are in
:mod:`speechface.avatars.live`.

Example:
    >>> parser = argparse.ArgumentParser(); add_parsers(parser.add_subparsers())
    >>> args = parser.parse_args(["stream", "-", "--space", "au17"])
    >>> args.func.__name__, args.input, args.pcm
    ('run_stream', '-', 's16le')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..avatars.live import (
    PCM_FORMATS,
    Chunk,
    JsonLinesSink,
    OscSink,
    UdpJsonSink,
    file_chunks,
    microphone_chunks,
    run_live,
    stdin_chunks,
)
from ..core.errors import SpeechfaceError

__all__ = ["add_parsers", "run_stream", "load_estimator"]


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``speechface stream`` to the CLI's sub-parsers.

    Example:
        >>> parser = argparse.ArgumentParser(); add_parsers(parser.add_subparsers())
    """
    p = sub.add_parser(
        "stream", help="live: microphone or stdin -> one frame of values every 40 ms (JSON lines, "
                       "UDP or OSC), with the measured latency",
        description="Run a speech model live. Input: the microphone (default), '-' for stdin "
                    "(raw PCM, or WAV detected by its header) or a sound file. Output: JSON lines "
                    "on stdout, or --udp / --osc to a port. A summary with the latency goes to "
                    "stderr at the end.")
    p.add_argument("input", nargs="?", default="mic",
                   help="'mic' (default), '-' (stdin) or a sound file")
    p.add_argument("--model", default=None,
                   help="model folder, packaged name or Hub repo id (default: the packaged "
                        "default of --space)")
    p.add_argument("--space", default="blendshapes52",
                   choices=["blendshapes52", "au17", "emotion8", "landmarks68"],
                   help="what to stream when --model is not given (default blendshapes52)")
    p.add_argument("--pcm", default="s16le", choices=sorted(PCM_FORMATS),
                   help="raw stdin sample format (default s16le; WAV headers are detected)")
    p.add_argument("--rate", type=int, default=16000, help="raw stdin / microphone sample rate")
    p.add_argument("--channels", type=int, default=1, help="raw stdin channels (averaged)")
    p.add_argument("--udp", default=None, metavar="[HOST:]PORT",
                   help="send one JSON datagram per frame (host default 127.0.0.1)")
    p.add_argument("--osc", default=None, metavar="[HOST:]PORT",
                   help="send OSC messages (host default 127.0.0.1)")
    p.add_argument("--osc-style", default="speechface", choices=["speechface", "vmc"],
                   help="OSC messages: /speechface/frame (default) or the VMC blendshape bundle")
    p.add_argument("--realtime", action="store_true",
                   help="pace a file input at real time (as if it were live)")
    p.add_argument("--seconds", type=float, default=None, help="stop the microphone after this")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--emotion", default=None,
                   help="add an emotion's FACS prototype (au17/blendshapes52; the jaw keeps the "
                        "speech)")
    p.add_argument("--intensity", type=float, default=1.0, help="strength of --emotion")
    p.add_argument("--random-weights", metavar="ARCH", default=None,
                   help="an untrained architecture (testing the pipeline only)")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    p.set_defaults(func=run_stream)


def load_estimator(args: argparse.Namespace) -> Any:
    """The model ``speechface stream`` runs: ``--random-weights``, ``--model`` or the packaged
    streaming default of ``--space``."""
    from ..pretrained import DEFAULT_MODELS
    from ..speech.model import SpeechEstimator, estimator_class

    cls = estimator_class(args.space)
    if args.random_weights:
        return cls.create(args.random_weights, space=args.space)
    if args.model is None and args.space not in DEFAULT_MODELS:
        raise SpeechfaceError(f"no packaged default model for {args.space} in this version; "
                              "pass --model or --random-weights ARCH")
    model = DEFAULT_MODELS.get(f"stream_{args.space}") if args.model is None else args.model
    return (SpeechEstimator if args.model is not None else cls).from_pretrained(model)


def run_stream(args: argparse.Namespace) -> int:
    """Handler of ``speechface stream``: source -> :func:`~speechface.avatars.live.run_live` -> sink."""
    if args.udp and args.osc:
        raise ValueError("give --udp or --osc, not both")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError("--max-frames must be >= 1")
    sink: Any
    if args.udp:
        sink = UdpJsonSink(args.udp)
    elif args.osc:
        sink = OscSink(args.osc, args.osc_style)
    else:
        sink = JsonLinesSink(sys.stdout)
    est = load_estimator(args)
    from ..speech.streaming import stream_support

    reason = stream_support(est)
    if reason is not None:
        raise SpeechfaceError(f"model {est.name!r} cannot stream: {reason}; choose a streamable "
                              "model with --model (log-mel features; cnn, dcnn, mlp or cnn_gru)")
    transform = None
    if args.emotion:
        from ..spaces.emotion_control import apply_emotion, emotion_weights

        emotion_weights(args.emotion)  # a bad name fails before any audio is read

        def transform(v: np.ndarray) -> np.ndarray:
            return apply_emotion(v, args.emotion, args.intensity, space=est.space.name)

    if args.input == "mic":
        chunks: Iterable[Chunk] = microphone_chunks(args.rate, seconds=args.seconds)
        rate = args.rate
    elif args.input == "-":
        chunks, rate = stdin_chunks(pcm=args.pcm, rate=args.rate, channels=args.channels)
    else:
        chunks, rate = file_chunks(args.input, realtime=args.realtime)
    try:
        stats = run_live(est, chunks, sink, sample_rate=rate, max_frames=args.max_frames,
                         transform=transform)
    finally:
        sink.close()
    if not args.quiet:
        kind = "pretrained" if est.pretrained else "RANDOM WEIGHTS (untrained)"
        print(f"streamed {stats['frames']} frames ({stats['seconds_in']:.2f} s of audio) with "
              f"{est.name} [{kind}]; model latency {stats['latency_model_s'] * 1000:.0f} ms; "
              f"measured: first sound to first value {stats['first_latency_s'] * 1000:.0f} ms, "
              f"mean {stats['mean_latency_s'] * 1000:.0f} ms, p95 "
              f"{stats['p95_latency_s'] * 1000:.0f} ms", file=sys.stderr)
    return 0
