"""Makes docs/img/readme_demo.png: the photo, the speech waveform with two predicted AU tracks,
and face crops of generated frames, with the packaged default models.

    python docs/scripts/readme_figure.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import speechface  # noqa: E402
from speechface.audio import load_audio  # noqa: E402
from speechface.render.face import find_face, load_image  # noqa: E402

SPEECH, PHOTO, OUT = "examples/data/speech.wav", "examples/data/astronaut.jpg", "docs/img/readme_demo.png"


def main() -> None:
    anim = speechface.animate(SPEECH, PHOTO, progress=False)
    photo = load_image(PHOTO)
    wave = load_audio(SPEECH).numpy()
    cond = anim.conditions
    box = find_face(photo)
    x0, y0, x1, y1 = (int(v) for v in (box.x0, box.y0, box.x1, box.y1))
    pad = int(0.15 * (x1 - x0))
    sl = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
    picks = np.linspace(15, anim.num_frames - 15, 5).astype(int)
    fig = plt.figure(figsize=(12, 5), dpi=100)
    gs = fig.add_gridspec(2, 5, height_ratios=[1, 1])
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(photo)
    ax.set_title("photo", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(gs[0, 1:])
    t = np.arange(len(wave)) / 16000
    ax.plot(t, wave, color="0.65", lw=0.4)
    ax.set_yticks([])
    ax.set_xlabel("seconds")
    ax2 = ax.twinx()
    for lab, col in (("AU25", "tab:red"), ("AU26", "tab:blue"), ("AU45", "tab:green")):
        ax2.plot(cond.times, cond[lab], color=col, lw=1.2, label=lab)
    ax2.legend(loc="upper right", fontsize=8, ncol=3)
    ax2.set_ylabel("predicted intensity")
    for k in picks:
        ax.axvline(k / 25, color="k", lw=0.6, ls=":")
    ax.set_title("speech (grey) and predicted action units at 25 fps", fontsize=9)
    for i, k in enumerate(picks):
        ax = fig.add_subplot(gs[1, i])
        ax.imshow(anim.frame(int(k))[sl])
        ax.set_title(f"frame {k} ({k / 25:.2f} s)", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
