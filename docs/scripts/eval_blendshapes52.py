"""Held-out evaluation of speech -> ARKit-52 models (Table-1 style, per blendshape group).

On the validation speakers of a training config (speaker-disjoint: ``val_groups``), for each
model folder given and the two baselines of the CAUSE paper (``Zero``: all zeros; ``Mean``: the
training-set mean of every blendshape):

- MAE with a 95% bootstrap CI over clips, per group (jaw/mouth, brows, eyes, cheeks/nose) and
  over all 51 teacher blendshapes (``tongueOut`` has no teacher and is left out);
- per-blendshape Pearson r over all held-out frames, and the mean per-clip r (clips with a
  varying teacher) - the issue's criterion for jawOpen and the mouth;
- "constant" outputs: blendshapes whose prediction does not move (std < 1e-3) where the
  teacher does (std > 1e-2).

Run from the repository root::

    python docs/scripts/eval_blendshapes52.py runs/blendshapes52/cnn_whisper/best \
        --data /work/main/prepared/av_mediapipe --config configs/arkit_cnn.yaml -o runs/eval_bs52

Writes ``results.json`` and ``results.md`` into ``-o``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]

#: the jaw/mouth blendshapes that move with articulation (the issue's "mouth blendshapes")
SPEECH_MOUTH = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft",
                "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthRollLower",
                "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
                "mouthPressRight", "mouthStretchLeft", "mouthStretchRight")

#: the speech mouth blendshapes that vary during speech: median over the *training* speakers of
#: their median per-clip std >= 0.01 (1% of the 0-1 range). Left out (they barely move in the
#: teacher while people talk): mouthClose (0.004), mouthFunnel (0.006), mouthShrugUpper
#: (0.0095), mouthStretchLeft (0.008), mouthStretchRight (0.009).
SPEECH_ACTIVE = ("jawOpen", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
                 "mouthUpperUpLeft", "mouthUpperUpRight", "mouthRollLower", "mouthRollUpper",
                 "mouthShrugLower", "mouthPressLeft", "mouthPressRight")

#: the sets of blendshapes whose mean per-clip r is reported (with a 95% CI over clips)
MOUTH_SETS = {"jawOpen": ("jawOpen",), "mouth16": SPEECH_MOUTH,
              "mouth15 (16 without jawOpen)": SPEECH_MOUTH[1:], "active11": SPEECH_ACTIVE}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folders (name=FOLDER to name a row)")
    p.add_argument("--data", required=True, help="prepared shard folder")
    p.add_argument("--config", default=str(REPO / "configs" / "arkit_cnn.yaml"),
                   help="training config whose val_groups are the held-out speakers")
    p.add_argument("-o", "--output", default="runs/eval_blendshapes52")
    p.add_argument("--n-boot", type=int, default=1000)
    args = p.parse_args(argv)

    import yaml

    from speechface import SpeechEstimator
    from speechface.data.clips import load_training_clips, split_groups
    from speechface.evaluation import predict_clip
    from speechface.evaluation.metrics import bootstrap_mean_ci, evaluate_sequences
    from speechface.spaces.blendshapes import ARKIT52_NAMES, BLENDSHAPE_GROUPS

    cfg = yaml.safe_load(Path(args.config).read_text())
    models = {}
    for spec in args.models:
        name, _, folder = spec.rpartition("=")
        est = SpeechEstimator.from_pretrained(folder)
        if est.space.name != "blendshapes52":
            raise SystemExit(f"{folder}: predicts {est.space.name}, not blendshapes52")
        models[name or est.name] = est
    clips = load_training_clips(args.data, "blendshapes52", "logmel", keep_audio=True)
    train, val = split_groups(clips, cfg["val_groups"], 0.2, 0)
    tr = np.concatenate([c.targets.numpy()[c.mask.numpy().astype(bool)] for c in train])
    train_mean = tr.mean(0)
    targets = [c.targets.numpy() for c in val]
    masks = [c.mask.numpy().astype(bool) for c in val]
    preds: dict[str, list[np.ndarray]] = {
        "Zero": [np.zeros_like(t) for t in targets],
        "Mean": [np.repeat(train_mean[None], len(t), 0) for t in targets]}
    for name, est in models.items():
        out = []
        for c, t in zip(val, targets):
            v = predict_clip(est, c)[: len(t)]
            if len(v) < len(t):
                v = np.concatenate([v, np.repeat(v[-1:], len(t) - len(v), 0)])
            out.append(v)
        preds[name] = out

    groups = {g: [ARKIT52_NAMES.index(n) for n in names]
              for g, names in BLENDSHAPE_GROUPS.items() if g != "tongue"}
    groups["all 51"] = [i for i, n in enumerate(ARKIT52_NAMES) if n != "tongueOut"]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row, pr in preds.items():
        table[row] = {}
        for g, idx in groups.items():
            r = evaluate_sequences([p[:, idx] for p in pr], [t[:, idx] for t in targets], masks,
                                   n_boot=args.n_boot)
            table[row][g] = {"mae": r["mae"], "ci": r["mae_ci"]}

    t_all = np.concatenate([t[m] for t, m in zip(targets, masks)])
    per_bs: dict[str, dict[str, dict[str, float]]] = {}
    for row in models:
        p_all = np.concatenate([p[m] for p, m in zip(preds[row], masks)])
        per_bs[row] = {}
        for j, n in enumerate(ARKIT52_NAMES):
            clip_r = [pearson(p[m, j], t[m, j]) for p, t, m in zip(preds[row], targets, masks)
                      if m.sum() > 2 and t[m, j].std() > 1e-3]
            clip_r = [r for r in clip_r if not math.isnan(r)]
            per_bs[row][n] = {
                "r": pearson(p_all[:, j], t_all[:, j]),
                "clip_r": float(np.mean(clip_r)) if clip_r else float("nan"),
                "n_clips": len(clip_r),
                "pred_std": float(p_all[:, j].std()), "teacher_std": float(t_all[:, j].std()),
                "mae": float(np.abs(p_all[:, j] - t_all[:, j]).mean())}

    # mean per-clip r of each set of mouth blendshapes: per blendshape the mean over the clips where
    # the teacher varies (as above), then the mean over the set; the 95% CI is the bootstrap over
    # clips of each clip's mean r over the set's blendshapes that vary in it
    sets: dict[str, dict[str, dict[str, Any]]] = {}
    for row in models:
        sets[row] = {}
        for sname, names in MOUTH_SETS.items():
            idx = [ARKIT52_NAMES.index(n) for n in names]
            per_clip = []
            for p, t, m in zip(preds[row], targets, masks):
                rs = [pearson(p[m, j], t[m, j]) for j in idx if m.sum() > 2 and t[m, j].std() > 1e-3]
                rs = [r for r in rs if not math.isnan(r)]
                if rs:
                    per_clip.append(float(np.mean(rs)))
            sets[row][sname] = {
                "mean_r": float(np.nanmean([per_bs[row][n]["clip_r"] for n in names])),
                "clip_mean": float(np.mean(per_clip)), "ci": bootstrap_mean_ci(per_clip),
                "n_clips": len(per_clip)}

    lines = [f"Held-out speakers: {len(val)} clips, {int(sum(m.sum() for m in masks))} frames "
             f"({', '.join(sorted({c.group for c in val}))}); training: {len(train)} clips.", "",
             "| predictor | " + " | ".join(f"{g} MAE (95% CI)" for g in groups) + " |",
             "| --- |" + " --- |" * len(groups)]
    for row, res in table.items():
        lines.append(f"| {row} | " + " | ".join(
            f"{res[g]['mae']:.4f} ({res[g]['ci'][0]:.4f}-{res[g]['ci'][1]:.4f})" for g in groups)
            + " |")
    for row in models:
        b = per_bs[row]
        mouth = [b[n]["clip_r"] for n in SPEECH_MOUTH if not math.isnan(b[n]["clip_r"])]
        const = [n for n, v in b.items() if v["pred_std"] < 1e-3 and v["teacher_std"] > 1e-2]
        from speechface.spaces.blendshapes import group_of

        by_group: dict[str, list[float]] = {}
        for n, v in b.items():
            if not math.isnan(v["clip_r"]):
                by_group.setdefault(group_of(n), []).append(v["clip_r"])
        lines += ["", f"**{row}**: mean per-clip r by group: " + ", ".join(
            f"{g} {np.mean(v):.3f} ({len(v)} blendshapes)" for g, v in sorted(by_group.items()))]
        lines += ["", f"**{row}**: jawOpen mean per-clip r = {b['jawOpen']['clip_r']:.3f} "
                  f"(pooled r {b['jawOpen']['r']:.3f}); mean per-clip r over the "
                  f"{len(mouth)} speech mouth blendshapes = {np.mean(mouth):.3f}; "
                  f"constant where the teacher varies: {', '.join(const) or 'none'}.", "",
                  "| blendshapes | mean per-clip r | clip mean (95% CI over clips) |",
                  "| --- | --- | --- |"]
        for sname, v in sets[row].items():
            lines.append(f"| {sname} | {v['mean_r']:.3f} | {v['clip_mean']:.3f} "
                         f"({v['ci'][0]:.3f}-{v['ci'][1]:.3f}) |")
        lines += ["",
                  "| blendshape | group | pooled r | mean per-clip r | MAE | pred std | teacher std |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for n in ARKIT52_NAMES:
            v = b[n]
            lines.append(f"| {n} | {group_of(n)} | {v['r']:.3f} | {v['clip_r']:.3f} | "
                         f"{v['mae']:.4f} | {v['pred_std']:.4f} | {v['teacher_std']:.4f} |")
    text = "\n".join(lines) + "\n"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    summary = {row: {"jawOpen_clip_r": per_bs[row]["jawOpen"]["clip_r"],
                     "mouth_clip_r": float(np.nanmean([per_bs[row][n]["clip_r"]
                                                       for n in SPEECH_MOUTH])),
                     "sets": sets[row],
                     "constant": [n for n, v in per_bs[row].items()
                                  if v["pred_std"] < 1e-3 and v["teacher_std"] > 1e-2]}
               for row in models}
    (out / "results.json").write_text(json.dumps(
        {"groups": table, "per_blendshape": per_bs, "summary": summary,
         "val_clips": [c.name for c in val], "n_val_frames": int(sum(m.sum() for m in masks))},
        indent=1, default=float))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
