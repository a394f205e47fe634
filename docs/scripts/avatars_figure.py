"""The docs figure of docs/avatars.md: ARKit curves predicted from speech under its waveform,
with the MediaPipe teacher's curves from the video, on a held-out speaker's clip.

    python docs/scripts/avatars_figure.py MODEL --data /work/main/prepared/av_mediapipe \
        --clip av_clips__grid_sbia1a -o docs/img/avatars_arkit_curves.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

CURVES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft",
          "mouthSmileLeft", "browInnerUp", "eyeBlinkLeft")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--clip", default="av_clips__grid_sbia1a")
    p.add_argument("-o", "--output", default="docs/img/avatars_arkit_curves.png")
    p.add_argument("--dpi", type=int, default=80)
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speechface import SpeechEstimator
    from speechface.data.shards import read_clip
    from speechface.spaces.blendshapes import ARKIT52_NAMES, mediapipe_to_arkit52

    arrays, meta = read_clip(args.data, args.clip)
    wave = arrays["audio"]
    teacher = mediapipe_to_arkit52(arrays["blendshapes"])
    mask = arrays["mask"].astype(bool)
    est = SpeechEstimator.from_pretrained(args.model)
    pred = est.predict(wave, 16000)
    n = min(len(pred), len(teacher))
    t = np.arange(n) / 25
    fig, axes = plt.subplots(len(CURVES) + 1, 1, figsize=(10, 1.0 * (len(CURVES) + 1) + 0.6),
                             sharex=True)
    tw = np.arange(len(wave)) / 16000
    axes[0].plot(tw, wave, lw=0.4, color="0.3")
    axes[0].set_ylabel("speech", rotation=0, ha="right", va="center", fontsize=8)
    axes[0].set_yticks([])
    for ax, name in zip(axes[1:], CURVES):
        j = ARKIT52_NAMES.index(name)
        tv = np.where(mask[:n], teacher[:n, j], np.nan)
        ax.plot(t, tv, color="0.6", lw=1.2, label="teacher (MediaPipe on the video)")
        ax.plot(t, pred.values[:n, j], color="C0", lw=1.2, label="predicted from speech")
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(0, max(0.05, float(np.nanmax(tv)), float(pred.values[:n, j].max())) * 1.1)
    axes[1].legend(loc="upper right", fontsize=7, ncol=2, frameon=False)
    axes[-1].set_xlabel("time (s)", fontsize=8)
    fig.suptitle(f"ARKit blendshapes from speech ({est.name}); held-out speaker {meta.get('speaker', args.clip)}",
                 fontsize=9)
    fig.tight_layout(h_pad=0.1)
    fig.savefig(args.output, dpi=args.dpi)
    r = np.corrcoef(pred.values[:n, ARKIT52_NAMES.index("jawOpen")][mask[:n]],
                    teacher[:n, ARKIT52_NAMES.index("jawOpen")][mask[:n]])[0, 1]
    print(f"wrote {args.output}: {n} frames; jawOpen r on this clip {r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
