"""Speech -> a Live Link Face take (CSV) for Unreal / MetaHuman, with an optional emotion.

The packaged speech -> ARKit-52 model (``BlendshapeEstimator.from_pretrained()``) predicts the 52
ARKit blendshapes at 25 fps; ``speechface.avatars.exporters.write_livelink_csv`` writes them in the
iPhone app's recording format (``Timecode, BlendShapeCount, EyeBlinkLeft ... TongueOut, HeadYaw
... RightEyeRoll``; head and eye rotations 0), resampled to ``--fps`` (60, the app's default).
``--emotion happiness --intensity 0.6`` adds the emotion's FACS prototype to the face while the
jaw and lips keep the speech (``speechface.spaces.emotion_control``). Import the CSV in Unreal with the
Live Link Face importer, or in Blender / Unity with any Live Link Face CSV importer.

Run from the repository root::

    python examples/livelink_export.py                       # -> runs/examples/take_livelink.csv
    python examples/livelink_export.py speech.wav --emotion happiness --intensity 0.6 -o take.csv
    python examples/livelink_export.py --fast -o /tmp/take.csv   # CI

Without a packaged model, ``--fast`` falls back to RANDOM WEIGHTS (the pipeline runs, the values
mean nothing) and says so; without ``--fast`` the library's error is shown (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_model(name: str | None, fast: bool):
    from speechface import BlendshapeEstimator, SpeechfaceError

    try:
        return BlendshapeEstimator.from_pretrained(name)
    except SpeechfaceError as e:
        if name is not None or not fast:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from e
        print("NOTE: no packaged ARKit model in this version; --fast uses RANDOM WEIGHTS.",
              file=sys.stderr)
        return BlendshapeEstimator.create("cnn")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("speech", nargs="?", default=str(HERE / "data" / "speech.wav"))
    p.add_argument("-o", "--output", default="runs/examples/take_livelink.csv")
    p.add_argument("--model", default=None, help="model folder or packaged name")
    p.add_argument("--fps", type=float, default=60.0, help="take frame rate (default 60)")
    p.add_argument("--emotion", default=None, help="happiness, sadness, surprise, anger, ...")
    p.add_argument("--intensity", type=float, default=0.6)
    p.add_argument("--fast", action="store_true", help="CI mode")
    args = p.parse_args(argv)
    fast = args.fast or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")

    from speechface.avatars.exporters import write_livelink_csv
    from speechface.spaces.emotion_control import apply_emotion

    est = load_model(args.model, fast)
    pred = est.predict(args.speech)
    values = pred.values
    if args.emotion:
        values = apply_emotion(values, args.emotion, args.intensity, space="blendshapes52")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_livelink_csv(values, out, fps=args.fps, track_fps=pred.fps)
    jaw = pred["jawOpen"]
    kind = "" if est.pretrained else " [RANDOM WEIGHTS]"
    print(f"{args.speech}: {len(pred)} frames at 25 fps -> {out} at {args.fps:g} fps "
          f"(Live Link Face CSV, 61 values per row); jawOpen mean {jaw.mean():.3f}, max "
          f"{jaw.max():.3f}; model {est.name}{kind}"
          + (f"; emotion {args.emotion} x {args.intensity:g}" if args.emotion else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
