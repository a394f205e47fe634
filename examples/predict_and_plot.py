"""Predict the 17 action-unit curves of a speech file and plot them as a heat map.

The packaged default AU model (``AUEstimator.from_pretrained()``, offline) estimates the 17
OpenFace AU intensities (0-5) once per 25 fps frame; the figure shows the waveform on top and
one heat-map row per AU below it, on the same time axis.

Run from the repository root::

    python examples/predict_and_plot.py                              # -> runs/examples/au_heatmap.png
    python examples/predict_and_plot.py my_speech.flac -o my_aus.png # any file, any sample rate
    python examples/predict_and_plot.py --fast -o /tmp/aus.png       # CI: lower resolution

Options: ``--model`` (a model folder, packaged name or Hub repo id instead of the default),
``--dpi`` (the image is exactly 12 x 6.5 inches at this dpi), ``--fast`` (or the environment
variable ``SPEECHFACE_EXAMPLES_FAST=1``: dpi 50).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGSIZE = (12.0, 6.5)  # inches; the PNG is FIGSIZE * dpi pixels


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("audio", nargs="?", default=str(HERE / "data" / "speech.wav"),
                   help="speech file (wav, flac, ogg, mp3; any sample rate)")
    p.add_argument("-o", "--output", default="runs/examples/au_heatmap.png", help="PNG to write")
    p.add_argument("--model", default=None,
                   help="model folder, packaged name or Hub repo id (default: packaged AU model)")
    p.add_argument("--dpi", type=int, default=None, help="resolution (default 120, --fast 50)")
    p.add_argument("--fast", action="store_true", help="small, quick output (CI)")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    dpi = args.dpi or (50 if fast else 120)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from speechface import AUEstimator
    from speechface.audio import load_audio

    est = AUEstimator.from_pretrained(args.model)
    wave = load_audio(args.audio, target_rate=est.sample_rate).numpy()
    result = est.predict(wave, est.sample_rate)
    values = result.values                                   # (frames, 17) at 25 fps
    duration = len(wave) / est.sample_rate
    print(f"{args.audio}: {duration:.2f} s -> {len(result)} frames x {values.shape[1]} AUs "
          f"({est.name}{'' if est.pretrained else ', RANDOM WEIGHTS'})")

    fig, (ax_w, ax_h) = plt.subplots(2, 1, figsize=FIGSIZE, dpi=dpi, sharex=True,
                                     height_ratios=[1, 3.5], layout="constrained")
    # waveform as a min/max envelope (one column per ~2 ms: quick for long files)
    step = max(1, len(wave) // 4000)
    n = len(wave) // step * step
    blocks = wave[:n].reshape(-1, step)
    t_env = (np.arange(len(blocks)) + 0.5) * step / est.sample_rate
    ax_w.fill_between(t_env, blocks.min(1), blocks.max(1), color="0.3", linewidth=0)
    ax_w.set_ylabel("speech")
    ax_w.set_yticks([])
    ax_w.set_title(f"{Path(args.audio).name}: AU intensities predicted by {est.name}"
                   + ("" if est.pretrained else " [RANDOM WEIGHTS]"))

    # frame n covers [n/25 - 0.02, n/25 + 0.02] s: it is centred at n/25 s
    half = 0.5 / result.fps
    vmax = max(1.0, float(values.max()))
    im = ax_h.imshow(values.T, aspect="auto", origin="upper", interpolation="nearest",
                     cmap="magma", vmin=0.0, vmax=vmax,
                     extent=(-half, len(result) / result.fps - half, len(result.labels) - 0.5, -0.5))
    names = [f"{a} {d}" for a, d in zip(result.labels, est.space.descriptions)]
    ax_h.set_yticks(range(len(names)), names, fontsize=7)
    ax_h.set_xlabel("time (s)")
    ax_h.set_xlim(0, min(duration, len(result) / result.fps - half))
    fig.colorbar(im, ax=ax_h, label="intensity (0-5)", pad=0.01)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    w, h = int(round(FIGSIZE[0] * dpi)), int(round(FIGSIZE[1] * dpi))
    top = sorted(result.mean().items(), key=lambda kv: -kv[1])[:3]
    print("highest mean AUs: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    print(f"wrote {out} ({w}x{h} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
