"""The mouth-sync driver (step 1 of :mod:`speechface.render.mouth_sync`) on the development split.

Which speech tracks to average into the mouth track, and how much to smooth it, were first
compared on the held-out speakers' clips (the only unseen speakers there were). This script
makes the same comparison on the development split of the *training* speakers instead (the 9
``val_groups`` of ``configs/arkit_cnn_whisper_dev.yaml``), with models trained without them:

- AU models: ``configs/cause_cnn_whisper_ccc_dev.yaml`` (the packaged ``cnn.au17-whisper``
  recipe), one folder per seed;
- ARKit: the development predictions (``runs/exp/NAME_dev.npz``) of
  ``docs/scripts/arkit_dev_variants.py`` runs of the packaged recipe, averaged over the runs given
  (the packaged ``cnn.blendshapes52-whisper`` averages four seeds).

For every driver (a set of tracks whose per-utterance z-scores are averaged,
:func:`speechface.render.mouth_sync.mouth_track`) and smoothing (sigma in frames,
:func:`speechface.spaces.transforms.smooth_conditions`) it prints the mean per-clip Pearson r with
the teacher's jawOpen on the 9 development clips (95 % bootstrap CI over clips), averaged over the
AU seeds. Run from the repository root after those trainings::

    python docs/scripts/mouth_driver_dev.py --au runs/au17w/ccc_dev_s0/best runs/au17w/ccc_dev_s1/best \\
        --arkit base_s0 base_s1 base_s2 base_s3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from speechface import SpeechEstimator
from speechface.data.shards import read_clip
from speechface.evaluation.metrics import bootstrap_mean_ci
from speechface.spaces.blendshapes import ARKIT52_NAMES
from speechface.spaces.transforms import smooth_conditions

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arkit_dev_variants as dev_variants  # noqa: E402

JAW = ARKIT52_NAMES.index("jawOpen")
AU25, AU26 = 14, 15
DRIVERS = {
    "AU26": ("AU26",),
    "AU25+AU26": ("AU25", "AU26"),
    "jawOpen": ("jawOpen",),
    "AU26+jawOpen": ("AU26", "jawOpen"),
    "AU25+AU26+jawOpen (default)": ("AU25", "AU26", "jawOpen"),
}
SIGMAS = (0.0, 1.0, 1.5, 2.0, 3.0)


def _z(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / s if s > 1e-8 else x * 0.0


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-8 and b.std() > 1e-8 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--au", nargs="+", required=True, help="AU model folders (dev recipe)")
    ap.add_argument("--arkit", nargs="+", required=True, help="arkit_dev_variants run names")
    ap.add_argument("--data", default="prepared/av_mediapipe")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _, dev = dev_variants.load([2])
    jaw_pred = None
    for name in args.arkit:
        z = np.load(f"runs/exp/{name}_dev.npz")
        p = [z[f"arr_{i}"][:, JAW] for i in range(len(z.files))]
        jaw_pred = p if jaw_pred is None else [a + b for a, b in zip(jaw_pred, p)]
    jaw_pred = [a / len(args.arkit) for a in jaw_pred]
    results: dict[tuple[str, float], list[np.ndarray]] = {}
    for folder in args.au:
        model = SpeechEstimator.from_pretrained(folder)
        for key in ((d, s) for d in DRIVERS for s in SIGMAS):
            results.setdefault(key, []).append(np.zeros(len(dev)))
        for i, clip in enumerate(dev):
            arrays, _ = read_clip(args.data, clip.name)
            au = np.asarray(model.predict(arrays["audio"], sample_rate=16000).values)
            m = clip.mask.numpy().astype(bool)
            n = min(len(au), len(m), len(jaw_pred[i]))
            tracks = {"AU25": au[:n, AU25], "AU26": au[:n, AU26], "jawOpen": jaw_pred[i][:n]}
            teacher = clip.targets.numpy()[:n, JAW]
            for d, parts in DRIVERS.items():
                track = np.mean([_z(tracks[p]) for p in parts], 0).astype(np.float32)
                for s in SIGMAS:
                    sm = smooth_conditions(track[:, None], s)[:, 0]
                    results[(d, s)][-1][i] = _r(sm[m[:n]], teacher[m[:n]])
    print(f"{len(dev)} development clips, {len(args.au)} AU seeds, ARKit = mean of {args.arkit}")
    print("| driver | " + " | ".join(f"sigma {s:g}" for s in SIGMAS) + " |")
    print("| --- |" + " --- |" * len(SIGMAS))
    for d in DRIVERS:
        cells = []
        for s in SIGMAS:
            per_clip = np.nanmean(np.stack(results[(d, s)]), 0)  # mean over AU seeds
            lo, hi = bootstrap_mean_ci(per_clip)
            cells.append(f"{np.mean(per_clip):.3f} [{lo:.2f}, {hi:.2f}]")
        print(f"| {d} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
