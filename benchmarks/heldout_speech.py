"""Speech AU models on voices they never heard: held-out speakers' clips and real OpenFace tracks.

Three measurements per model (issue 14's targets):

1. **Mouth**: on the held-out speakers' talking-face clips (the ``val_groups`` of a training
   config, never trained on), the per-clip Pearson r between the predicted AU26 (and AU25) and the
   speaker's real mouth opening (MediaPipe ``jawOpen`` of the video), mean over clips with a 95%
   bootstrap CI over clips.
2. **No constant output**: per AU, the standard deviation over time of the predictions on those
   clips, against the teacher's; an AU is "constant" if its predictions move less than 2% of the
   teacher's movement while the teacher moves.
3. **OpenFace, leave one actor out**: the 6 real OpenFace 2 tracks of RAVDESS clips (or more,
   ``--openface DIR [DIR ...]``); each model is calibrated
   (:func:`speechface.evaluation.calibration.fit_calibration`, method ``--method``) on all actors but
   one and scored on that one; pooled MAE / MSE with 95% CIs against Zero and Mean, per-AU
   Pearson r; and the mean within-clip r of AU25 / AU26 (95% CI over clips).

Run from the repository root (needs ``prepared/av_mediapipe`` from ``speechface prepare av`` and
../shared)::

    python benchmarks/heldout_speech.py CNN-W=runs/au17w/cnn/best DEFAULT=cnn.au17-mediapipe-openface \
        --config configs/cause_cnn.yaml --json runs/heldout.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from speechface import SpeechEstimator
from speechface.data.shards import list_clips, read_clip
from speechface.evaluation import openface_clips
from speechface.evaluation.calibration import cross_validate_calibration
from speechface.evaluation.metrics import bootstrap_mean_ci
from speechface.teachers.mediapipe import BLENDSHAPE_NAMES

JAW = BLENDSHAPE_NAMES.index("jawOpen")


def heldout_clips(data: str, groups: set[str]) -> list[dict]:
    out = []
    for rec in list_clips(data):
        if rec.get("speaker", rec["name"]) in groups:
            arrays, _ = read_clip(data, rec["name"])
            out.append({"name": rec["name"], "audio": arrays["audio"], "jaw": arrays["blendshapes"][:, JAW],
                        "au": arrays["targets_au17"], "mask": arrays["mask"].astype(bool)})
    return out


def mouth_and_motion(model: SpeechEstimator, clips: list[dict]) -> dict:
    labels = list(model.space.labels)
    i25, i26 = labels.index("AU25"), labels.index("AU26")
    r25, r26, p_std, t_std = [], [], [], []
    for c in clips:
        pred = model.predict(c["audio"], sample_rate=16000).values
        n = min(len(pred), len(c["jaw"]))
        m = c["mask"][:n]
        jaw = c["jaw"][:n][m]
        if m.sum() < 10 or jaw.std() < 1e-4:
            continue
        for idx, rs in ((i25, r25), (i26, r26)):
            p = pred[:n][m][:, idx]
            rs.append(float(np.corrcoef(p, jaw)[0, 1]) if p.std() > 1e-9 else 0.0)
        p_std.append(pred[:n][m].std(0))
        t_std.append(c["au"][:n][m].std(0))
    p_std, t_std = np.median(np.stack(p_std), 0), np.median(np.stack(t_std), 0)
    constant = [lab for lab, ps, ts in zip(labels, p_std, t_std) if ts > 1e-3 and ps < 0.02 * ts]
    r25, r26 = np.array(r25), np.array(r26)
    return {"n_clips": len(r26), "au26_jaw_r": float(r26.mean()), "au26_jaw_r_ci": bootstrap_mean_ci(r26),
            "au25_jaw_r": float(r25.mean()), "au25_jaw_r_ci": bootstrap_mean_ci(r25),
            "per_clip_au26_r": [round(float(v), 3) for v in r26],
            "pred_std": dict(zip(labels, np.round(p_std, 4).tolist())),
            "teacher_std": dict(zip(labels, np.round(t_std, 4).tolist())),
            "constant_aus": constant}


def within_clip_r(model: SpeechEstimator, clips: list) -> dict:
    """Per-clip Pearson r of the predicted AU25 / AU26 with the real OpenFace track (a positive
    per-AU calibration does not change it), mean with a 95% bootstrap CI over clips."""
    labels = list(model.space.labels)
    out: dict = {"n_clips": len(clips)}
    preds = [model.predict(c.audio, sample_rate=16000).values for c in clips]
    for lab in ("AU25", "AU26"):
        i = labels.index(lab)
        rs = []
        for c, pred in zip(clips, preds):
            n = min(len(pred), len(c.targets))
            m = c.mask.numpy()[:n].astype(bool)
            p, t = pred[:n][m][:, i], c.targets.numpy()[:n][m][:, i]
            rs.append(float(np.corrcoef(p, t)[0, 1]) if p.std() > 1e-9 and t.std() > 1e-9 else 0.0)
        rs = np.array(rs)
        out[lab] = {"mean": float(rs.mean()), "ci": bootstrap_mean_ci(rs),
                    "per_clip": {c.name: round(float(v), 3) for c, v in zip(clips, rs)}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="NAME=MODEL")
    ap.add_argument("--data", default="prepared/av_mediapipe")
    ap.add_argument("--config", default="configs/cause_cnn.yaml", help="its val_groups are held out")
    shared = Path(os.environ.get("SPEECHFACE_SHARED", "../shared"))
    ap.add_argument("--openface", nargs="+", default=[str(shared / "data" / "ravdess_openface")],
                    help="folders of OpenFace CSVs of RAVDESS clips (default: the 6 shared "
                    "tracks); more tracks of the RAVDESS facial-tracking release can be added")
    ap.add_argument("--audio-root", default=str(shared / "data" / "ravdess"))
    ap.add_argument("--method", default="floor", help="calibration method for the OpenFace CV")
    ap.add_argument("--floor", type=float, default=0.1,
                    help="the floor method's floor (default: %(default)s, the packaged default's)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    groups = set(yaml.safe_load(Path(args.config).read_text())["val_groups"])
    clips = heldout_clips(args.data, groups)
    models = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        models[name] = SpeechEstimator.from_pretrained(path)
    out: dict = {"heldout_groups": sorted(groups), "models": {}}
    for name, model in models.items():
        res = mouth_and_motion(model, clips)
        out["models"][name] = res
        lo, hi = res["au26_jaw_r_ci"]
        print(f"{name:>14}: AU26~jawOpen r = {res['au26_jaw_r']:.3f} [{lo:.3f}, {hi:.3f}] "
              f"AU25~jawOpen r = {res['au25_jaw_r']:.3f} over {res['n_clips']} held-out clips; "
              f"constant AUs: {res['constant_aus'] or 'none'}")
    of = openface_clips(sorted(p for d in args.openface for p in Path(d).glob("*.csv")),
                        audio_root=args.audio_root)
    cv = cross_validate_calibration(models, of, n_boot=args.n_boot, method=args.method,
                                    **({"floor": args.floor} if args.method == "floor" else {}))
    out["openface_within_clip"] = {}
    for name, model in models.items():
        res = within_clip_r(model, of)
        out["openface_within_clip"][name] = res
        print(f"{name:>14}: OpenFace within-clip r over {res['n_clips']} actors' clips: " + ", ".join(
            f"{lab} {res[lab]['mean']:.3f} [{res[lab]['ci'][0]:.3f}, {res[lab]['ci'][1]:.3f}]"
            for lab in ("AU25", "AU26")))
    out["openface_loao"] = {}
    for name, res in cv["frame"].items():
        per = res.get("per_label", {})
        row = {"mae": res["mae"], "mae_ci": res.get("mae_ci"), "mse": res["mse"],
               "mse_ci": res.get("mse_ci"),
               "pearson": {lab: per.get(lab, {}).get("pearson") for lab in cv["labels"]}}
        out["openface_loao"][name] = row
        r = row["pearson"]
        print(f"{name:>14}: OpenFace LOAO MAE {res['mae']:.3f} {res.get('mae_ci')} MSE {res['mse']:.3f} "
              f"AU25 r {r.get('AU25')} AU26 r {r.get('AU26')}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
