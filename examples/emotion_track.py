"""Track the emotion of a speech file frame by frame: a CSV, a stacked-area plot and a summary.

``EmotionEstimator.from_pretrained()`` loads the packaged emotion model, which gives the
8-way FER+ emotion distribution (neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt; they sum to 1) once per 25 fps frame. The example writes it as a CSV
(``frame, timestamp, neutral, ...``), draws it as a stacked-area chart over time and prints
the utterance summary (the mean distribution and its top emotion).

Run from the repository root::

    python examples/emotion_track.py                     # -> runs/examples/emotions.csv + .png
    python examples/emotion_track.py angry.flac -o angry.csv    # -> angry.csv + angry.png
    python examples/emotion_track.py --model runs/emotion/distill/best   # a model folder
    python examples/emotion_track.py --fast -o /tmp/emotions.csv         # CI

If this version of speechface packages no emotion model, the example says so and exits with
code 2 - except with ``--fast`` (or ``SPEECHFACE_EXAMPLES_FAST=1``), which then uses a model
with RANDOM WEIGHTS so that the pipeline can be tested, and labels every output as such.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGSIZE = (11.0, 4.5)  # inches; the PNG is FIGSIZE * dpi pixels


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("audio", nargs="?", default=str(HERE / "data" / "speech.wav"),
                   help="speech file (wav, flac, ogg, mp3; any sample rate)")
    p.add_argument("-o", "--output", default="runs/examples/emotions.csv",
                   help="CSV to write; the plot goes next to it as .png")
    p.add_argument("--plot", default=None, help="PNG path (default: the CSV's name with .png)")
    p.add_argument("--model", default=None,
                   help="model folder, packaged name or Hub repo id (default: packaged)")
    p.add_argument("--dpi", type=int, default=None, help="plot resolution (default 110, --fast 50)")
    p.add_argument("--fast", action="store_true",
                   help="CI mode: random weights if no emotion model is packaged")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    dpi = args.dpi or (50 if fast else 110)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speechface import EmotionEstimator, ModelError

    try:
        est = EmotionEstimator.from_pretrained(args.model)
    except ModelError as e:
        if args.model is not None or not fast:
            print(f"error: {e}", file=sys.stderr)
            if args.model is None:
                print("No emotion model is packaged with this version of speechface. Pass a "
                      "trained one with --model FOLDER (speechface train emotion ...), or use "
                      "--fast to run the example with random weights.", file=sys.stderr)
            return 2
        print("NOTE: no packaged emotion model in this version of speechface; --fast uses a "
              "model with RANDOM WEIGHTS. Its emotions mean nothing.", file=sys.stderr)
        import torch

        torch.manual_seed(0)  # the same stand-in every run
        est = EmotionEstimator.create("dcnn", name="dcnn.emotion8-untrained")

    result = est.predict(args.audio)   # (frames, 8) probabilities at 25 fps
    flag = "" if est.pretrained else " [RANDOM WEIGHTS]"
    csv = Path(args.output)
    csv.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(csv)

    # stacked areas: at every frame the 8 probabilities fill the column from 0 to 1
    png = Path(args.plot) if args.plot else csv.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    colours = ["0.75", "#f2b701", "#e68310", "#3969ac", "#cf1c90", "#11a579", "#7f3c8d", "#80ba5a"]
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=dpi, layout="constrained")
    ax.stackplot(result.times, result.values.T, labels=result.labels, colors=colours,
                 linewidth=0)
    ax.set_xlim(0, max(result.times[-1], 1 / result.fps))
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(args.audio).name}: emotion distribution per frame ({est.name}){flag}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.savefig(png, dpi=dpi)
    plt.close(fig)

    summary = sorted(result.mean().items(), key=lambda kv: -kv[1])
    print(f"{args.audio}: {len(result)} frames at {result.fps:g} fps, model {est.name}{flag}")
    print("utterance summary (mean probability over frames):")
    for label, value in summary:
        print(f"  {label:10s} {value:.3f} {'#' * int(round(40 * value))}")
    print(f"top emotion: {result.top()}{flag}")
    print(f"wrote {csv} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
