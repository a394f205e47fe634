"""Speech -> landmarks68 on voices never heard: mouth opening and MSE on held-out speakers.

For each model, on the held-out speakers' talking-face clips (``val_groups`` of a training config):

- **mouth opening**: the distance between the inner-lip midpoints (iBUG points 62 and 66,
  0-based) of the predicted landmarks against that of the teacher's (MediaPipe) landmarks of the
  real video, per-clip Pearson r, mean over clips with a 95 % bootstrap CI; and the predicted
  opening's standard deviation over time relative to the real one (does it move enough?);
- **MSE** of all 136 coordinates against the teacher's, next to the **mean face** (the training
  clips' mean landmarks) as a baseline, with 95 % bootstrap CIs over clips, and the model's MSE
  minus the mean face's paired by clip (negative: below the mean face) with its CI.

    python benchmarks/heldout_landmarks.py NEW=runs/landmarks68w/cnn_gru/best \
        OLD=cnn_gru.landmarks68-mediapipe --config configs/landmarks_cnn_gru.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from speechface import SpeechEstimator
from speechface.data.shards import list_clips, read_clip
from speechface.evaluation.metrics import bootstrap_mean_ci

UPPER, LOWER = 62, 66


def opening(lm: np.ndarray) -> np.ndarray:
    """(T, 136) landmarks -> (T,) inner-lip opening (same units as the landmarks)."""
    pts = lm.reshape(len(lm), 68, 2)
    return np.linalg.norm(pts[:, UPPER] - pts[:, LOWER], axis=-1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="NAME=MODEL")
    ap.add_argument("--data", default="prepared/av_mediapipe")
    ap.add_argument("--config", default="configs/landmarks_cnn_gru.yaml")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    groups = set(yaml.safe_load(Path(args.config).read_text())["val_groups"])
    held, train_lm = [], []
    for rec in list_clips(args.data):
        arrays, _ = read_clip(args.data, rec["name"])
        m = arrays["mask"].astype(bool)
        if rec.get("speaker", rec["name"]) in groups:
            held.append((arrays["audio"], arrays["targets_landmarks68"], m))
        else:
            train_lm.append(arrays["targets_landmarks68"][m])
    mean_face = np.concatenate(train_lm).mean(0)
    out: dict = {"n_clips": len(held)}
    mse_mean = np.array([((lm[m] - mean_face) ** 2).mean() for _, lm, m in held])
    out["Mean face"] = {"mse": float(mse_mean.mean()), "mse_ci": bootstrap_mean_ci(mse_mean)}
    print(f"{'Mean face':>10}: MSE {mse_mean.mean():.5f} {out['Mean face']['mse_ci']}")
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = SpeechEstimator.from_pretrained(path)
        rs, ratio, mses = [], [], []
        for audio, lm, m in held:
            pred = model.predict(audio, sample_rate=16000).values
            n = min(len(pred), len(lm))
            p, t, mm = pred[:n], lm[:n], m[:n]
            mses.append(((p[mm] - t[mm]) ** 2).mean())
            po, to = opening(p[mm]), opening(t[mm])
            if len(po) > 10 and to.std() > 1e-6:
                rs.append(float(np.corrcoef(po, to)[0, 1]) if po.std() > 1e-9 else 0.0)
                ratio.append(float(po.std() / to.std()))
        rs, ratio, mses = np.array(rs), np.array(ratio), np.array(mses)
        out[name] = {"mouth_r": float(rs.mean()), "mouth_r_ci": bootstrap_mean_ci(rs),
                     "per_clip_r": [round(float(v), 3) for v in rs],
                     "opening_std_ratio_median": float(np.median(ratio)),
                     "mse": float(mses.mean()), "mse_ci": bootstrap_mean_ci(mses),
                     # paired by clip: the model's MSE minus the mean face's
                     "mse_minus_mean_face": float((mses - mse_mean).mean()),
                     "mse_minus_mean_face_ci": bootstrap_mean_ci(mses - mse_mean)}
        res = out[name]
        print(f"{name:>10}: mouth opening r {rs.mean():.3f} {res['mouth_r_ci']}; opening std / real "
              f"{np.median(ratio):.2f} (median); MSE {mses.mean():.5f} {res['mse_ci']}; minus the "
              f"mean face's (paired by clip) {res['mse_minus_mean_face']:.6f} "
              f"{res['mse_minus_mean_face_ci']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
