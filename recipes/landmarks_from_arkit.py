"""Build a speech -> landmarks68 model from a speech -> ARKit-52 model (issue 14, landmarks).

The teacher (MediaPipe) gives both the 52 blendshapes and the 68 landmarks of every frame, so a
linear map ``landmarks ~ blendshapes @ B + c`` is fitted on the *training* speakers' frames (ridge
least squares, :func:`speechface.speech.output_maps.fit_linear_map`) and folded into the ARKit
model's output layer (:func:`speechface.speech.output_maps.compose_linear_map`): one ``cnn`` with
the ARKit model's mouth; the 20 mouth points are mapped from five blendshapes only
(``--mouth-from``, default :data:`MOUTH_FROM`: the jaw and the lips' vertical movement). Speech
cannot tell a face's shape, so the network is centred over each utterance (``center=True``: every
coordinate averages to the training mean face) and each coordinate's movement is shrunk by the
MSE-optimal factor (one for the mouth points, one for the rest:
:func:`speechface.speech.output_maps.fit_shrink`), fitted on a development split of the training
speakers: the ``--dev-model`` (the same recipe trained without the ``val_groups`` of
``--dev-config``) predicts those speakers' clips through a map fitted without them. The held-out
speakers (``val_groups`` of ``--config``) are never used. As for the other landmark model,
``info["dynamics_gain"]`` (fitted on the training clips, for the mouth points only) lets
:func:`speechface.animate` widen the shrunk mouth movement again; the metrics use the raw outputs.

    python recipes/landmarks_from_arkit.py runs/blendshapes52/cnn_whisper_final/best \\
        --dev-model runs/blendshapes52/cnn_whisper_final_dev/best \\
        --config configs/arkit_cnn_whisper.yaml --dev-config configs/arkit_cnn_whisper_dev.yaml \\
        --data prepared/av_mediapipe -o runs/landmarks68_arkit --name cnn.landmarks68-arkit
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
from speechface.core.hub import half_weights
from speechface.data.shards import list_clips, read_clip
from speechface.spaces.blendshapes import mediapipe_to_arkit52
from speechface.spaces.space import ARKIT52_NAMES
from speechface.speech.output_maps import (
    compose_linear_map,
    fit_linear_map,
    fit_shrink,
    merge_cnns,
)

#: one shrink factor for the 20 mouth points (iBUG 48-67, x and y), one for the other 48 points
MOUTH_GROUPS = np.array([1 if 48 <= i % 68 else 0 for i in range(136)])
#: the ARKit blendshapes the mouth points are mapped from (``--mouth-from``'s default): the jaw
#: and the lips' vertical movement, the shapes speech predicts best; the other mouth shapes,
#: predicted with little of the real movement, added noise to the opening on the development
#: speakers (docs/model-quality.md)
MOUTH_FROM = ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
              "mouthUpperUpRight")


def fit_map(bs: np.ndarray, lm: np.ndarray, ridge: float, mouth_from: list[str] | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The blendshape -> landmark map; with ``mouth_from`` the 20 mouth points come from those
    blendshapes alone (their rows of the map; the other rows are 0 for the mouth points)."""
    b, c = fit_linear_map(bs, lm, ridge)
    if mouth_from:
        idx = [ARKIT52_NAMES.index(n) for n in mouth_from]
        mouth = MOUTH_GROUPS == 1
        bm, cm = fit_linear_map(bs[:, idx], lm[:, mouth], ridge)
        b[:, mouth] = 0.0
        b[np.ix_(idx, np.flatnonzero(mouth))] = bm
        c[mouth] = cm
    return b, c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the blendshapes52 model folder (cnn) to map")
    ap.add_argument("--dev-model", required=True, nargs="+", help="the same recipe trained "
                    "without the development speakers (--dev-config val_groups); several seeds "
                    "are merged (their mean), as the model's members")
    ap.add_argument("--config", required=True, help="config whose val_groups are held out")
    ap.add_argument("--dev-config", required=True, help="config whose val_groups are the "
                    "development speakers")
    ap.add_argument("--data", default="prepared/av_mediapipe")
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--mouth-from", default=",".join(MOUTH_FROM),
                    help="comma-separated ARKit blendshapes the mouth points are mapped from "
                         "(default: the jaw and the lips' vertical movement; 'all': all 52)")
    ap.add_argument("--name", default="cnn.landmarks68-arkit")
    ap.add_argument("--fp16", action="store_true", help="store the weight matrices as float16")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    mouth_from = None if args.mouth_from == "all" else args.mouth_from.split(",")
    unknown = sorted(set(mouth_from or []) - set(ARKIT52_NAMES))
    if unknown:
        raise SystemExit(f"--mouth-from: not ARKit blendshapes: {unknown}")

    held = set(yaml.safe_load(Path(args.config).read_text())["val_groups"])
    dev_groups = set(yaml.safe_load(Path(args.dev_config).read_text())["val_groups"])
    if held & dev_groups:
        raise SystemExit(f"development groups overlap the held-out ones: {sorted(held & dev_groups)}")
    train, dev = [], []
    for rec in list_clips(args.data):
        group = rec.get("speaker", rec["name"])
        if group in held:
            continue
        arrays, _ = read_clip(args.data, rec["name"])
        bs, lm = mediapipe_to_arkit52(arrays["blendshapes"]), arrays["targets_landmarks68"]
        n = min(len(bs), len(lm))
        m = arrays["mask"][:n].astype(bool)
        item = {"bs": bs[:n][m], "lm": lm[:n][m], "mask": m, "audio": arrays["audio"],
                "group": group}
        (dev if group in dev_groups else train).append(item)
    missing = dev_groups - {d["group"] for d in dev}
    if missing:
        raise SystemExit(f"development groups not in {args.data}: {sorted(missing)}")

    def frames(items: list[dict], key: str) -> np.ndarray:
        return np.concatenate([it[key] for it in items])

    # 1. the shrink factors, on the development speakers (map and model fitted without them)
    b_dev, c_dev = fit_map(frames(train, "bs"), frames(train, "lm"), args.ridge, mouth_from)
    mf_dev = frames(train, "lm").mean(0)
    dev_models = [SpeechEstimator.from_pretrained(m) for m in args.dev_model]
    dev_bs = dev_models[0] if len(dev_models) == 1 else merge_cnns(dev_models)
    dev_lm = compose_linear_map(dev_bs, b_dev, c_dev, "landmarks68", center=True, bias=mf_dev)
    preds, targets = [], []
    for it in dev:
        p = dev_lm.predict(it["audio"], sample_rate=16000).values
        n = min(len(p), len(it["mask"]))
        preds.append(p[:n][it["mask"][:n]])
        targets.append(it["lm"][: int(it["mask"][:n].sum())])
    k = fit_shrink(np.concatenate(preds), np.concatenate(targets), mf_dev, groups=MOUTH_GROUPS)

    # 2. the model: map fitted on all training speakers' frames, centred on their mean face
    everything = train + dev
    b, c = fit_map(frames(everything, "bs"), frames(everything, "lm"), args.ridge, mouth_from)
    mean_face = frames(everything, "lm").mean(0)
    base = SpeechEstimator.from_pretrained(args.model)
    info = {"teacher": "MediaPipe FaceLandmarker 68-point iBUG subset, through a linear map "
                       "from its 52 blendshapes",
            "from_model": base.name, "map_ridge": args.ridge,
            "mouth_from": mouth_from or "all 52 blendshapes",
            "map_fitted_on": f"{len(everything)} training clips ({len(frames(everything, 'bs'))} frames)",
            "shrink_mouth": float(k[MOUTH_GROUPS == 1][0]), "shrink_rest": float(k[MOUTH_GROUPS == 0][0]),
            "shrink_fitted_on": sorted(dev_groups), "shrink_dev_models": len(dev_models),
            "val_groups": sorted(held)}
    lm_model = compose_linear_map(base, b, c, "landmarks68", center=True, bias=mean_face,
                                  name=args.name, info=info)
    lm_model.set_calibration(torch.from_numpy(k).float(),
                             torch.from_numpy((1 - k) * mean_face).float())
    lm_model.pretrained = True
    # animate() widens the (shrunk) movement back to the teacher's range on the training clips
    # (global-variance compensation, as the other landmark model); metrics use raw outputs
    from speechface.data.clips import load_training_clips
    from speechface.evaluation.calibration import fit_dynamics_gain

    clips = [c for c in load_training_clips(args.data, "landmarks68", "logmel", keep_audio=True)
             if c.group not in held]
    fit = fit_dynamics_gain(lm_model, clips)
    # only the mouth is widened: elsewhere the (shrunk) movement does not follow the speech
    # (head and brow motion), and widening it would only add jitter
    gain = [g if MOUTH_GROUPS[i] else 1.0 for i, g in enumerate(fit["gain"])]
    lm_model.info = {**lm_model.info, "dynamics_gain": gain, "dynamics_gain_fit": {
        "n_clips": fit["n_clips"], "on": "training clips (train_groups), mouth points only "
        "(1 elsewhere)",
        "method": "speechface.evaluation.calibration.fit_dynamics_gain (low=1, high=8)"}}
    out = Path(args.output)
    lm_model.save_pretrained(out)
    if args.fp16:
        half_weights(out)
    summary = {"shrink_mouth": info["shrink_mouth"], "shrink_rest": info["shrink_rest"],
               "dev_clips": len(dev), "train_clips": len(everything), "output": str(out)}
    (out / "build.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
