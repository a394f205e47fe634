"""Animate a face photo with speech: speech -> AUs -> a talking-face mp4 with the sound.

This is ``speechface.animate("examples/data/speech.wav", "examples/data/astronaut.jpg")`` with
the packaged default models (the AU estimator and the face translator), saved as an H.264 +
AAC video. Only the face region of the photo changes; the rest stays as it was.

Run from the repository root::

    python examples/animate_photo.py                       # -> runs/examples/talking.mp4
    python examples/animate_photo.py my_speech.wav my_photo.jpg -o me.mp4 --smoothing 2
    python examples/animate_photo.py --translator runs/ganimation_faces128/best   # your own
    python examples/animate_photo.py --fast -o /tmp/talking.mp4    # CI: the first 2 s

Without a packaged translator (an older or a development version of speechface) the normal
mode stops with the library's error. Only ``--fast`` (or ``SPEECHFACE_EXAMPLES_FAST=1``) then
falls back to a tiny translator with RANDOM WEIGHTS, and says so: its video shows that the
pipeline runs end to end, not a real animation. ``--fast`` also animates only the first
``--seconds 2`` of the speech.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAST_SECONDS = 2.0


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def random_translator():
    """A tiny GANimation generator with random weights (a stand-in, never a real model)."""
    import torch

    from speechface.render.translators import Translator

    torch.manual_seed(0)  # the same stand-in every run
    return Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1,
                             name="ganimation-tiny [RANDOM WEIGHTS, example fallback]")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("audio", nargs="?", default=str(HERE / "data" / "speech.wav"),
                   help="speech file (wav, flac, ogg, mp3; any sample rate)")
    p.add_argument("image", nargs="?", default=str(HERE / "data" / "astronaut.jpg"),
                   help="photo with a face")
    p.add_argument("-o", "--output", default="runs/examples/talking.mp4", help=".mp4 (or .gif / .webp) to write")
    p.add_argument("--translator", default=None,
                   help="translator folder, packaged name or Hub repo id (default: packaged)")
    p.add_argument("--model", default=None,
                   help="speech estimator folder/name (default: the packaged one for the "
                        "translator's space)")
    p.add_argument("--smoothing", type=float, default=1.5,
                   help="temporal smoothing, Gaussian sigma in 40 ms frames (default 1.5)")
    p.add_argument("--strength", type=float, default=1.0, help="expression strength (default 1)")
    p.add_argument("--seconds", type=float, default=None,
                   help="animate only the first seconds of the speech (--fast: 2)")
    p.add_argument("--side-by-side", action="store_true", help="photo left, animation right")
    p.add_argument("--fast", action="store_true",
                   help="CI mode: 2 s, and a random-weights translator if none is packaged")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    seconds = args.seconds if args.seconds is not None else (FAST_SECONDS if fast else None)

    import speechface
    from speechface import SpeechfaceError
    from speechface.audio import load_audio
    from speechface.pretrained import DEFAULT_MODELS, list_pretrained
    from speechface.render.translators import Translator
    from speechface.render.video import VIDEO_FORMATS

    if Path(args.output).suffix.lower() not in (*VIDEO_FORMATS, ".gif", ".webp"):
        p.error(f"-o {args.output}: write one of {', '.join(VIDEO_FORMATS)}, .gif, .webp")
    translator = estimator = None
    try:
        if args.translator is not None:
            translator = Translator.from_pretrained(args.translator)
        elif DEFAULT_MODELS.get("translator") or list_pretrained("translator") or not fast:
            translator = Translator.from_pretrained()  # the packaged default, as animate() does
        else:
            print("NOTE: this speechface version packages no face translator; --fast uses a tiny "
                  "translator with RANDOM WEIGHTS instead. The video shows the pipeline "
                  "working, not a real animation (without --fast this example stops here).",
                  file=sys.stderr)
            translator = random_translator()
        if args.model is not None:
            estimator = speechface.SpeechEstimator.from_pretrained(args.model)

        audio, rate = args.audio, None
        if seconds is not None:  # the first seconds only: a 16 kHz array
            wave = load_audio(args.audio, target_rate=16000)
            audio, rate = wave[: int(round(seconds * 16000))].numpy(), 16000
        anim = speechface.animate(audio, args.image, estimator, translator, sample_rate=rate,
                                  smoothing=args.smoothing, strength=args.strength,
                                  side_by_side=args.side_by_side, progress=not fast)
        out = anim.save(args.output)
    except (SpeechfaceError, ValueError) as e:  # ValueError: e.g. an output type it cannot write
        print(f"error: {e}", file=sys.stderr)
        if translator is None and args.translator is None:
            print("Pass a trained translator with --translator FOLDER (speechface train "
                  "ganimation ...), or run with --fast to test the pipeline with random "
                  "weights.", file=sys.stderr)
        return 1

    def kind(which: str) -> str:
        return "trained" if anim.info.get(f"{which}_pretrained") else "RANDOM WEIGHTS"

    w, h = anim.size
    print(f"wrote {out}: {len(anim)} frames {w}x{h} at {anim.fps:g} fps ({anim.duration:.2f} s) "
          f"with the speech")
    print(f"  estimator  {anim.info['estimator']} ({kind('estimator')}), predicts "
          f"{anim.conditions.space}")
    print(f"  translator {anim.info['translator']} ({kind('translator')}), conditioned on "
          f"{anim.info['space']}")
    print(f"  face {anim.face_index + 1} of {anim.n_faces} at {anim.face}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
