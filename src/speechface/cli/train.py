"""``speechface train ...`` (one per registered recipe), ``evaluate`` and ``calibrate``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..core.errors import DataError, SpeechfaceError

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``train`` (one sub-command per registered recipe), ``evaluate`` and ``calibrate``."""
    from ..training import TRAIN_COMMANDS, add_train_parsers

    train = sub.add_parser("train", help=f"train a component ({', '.join(TRAIN_COMMANDS)})")
    tsub = train.add_subparsers(dest="component", metavar="COMPONENT")
    tsub.required = True
    add_train_parsers(tsub)

    e = sub.add_parser("evaluate", help="evaluate estimators on held-out clips (Table-1 style)",
                       description="MAE/MSE with 95%% CIs, per-AU MAE, Pearson and CCC, against the "
                                   "Zero and training-mean baselines.")
    e.add_argument("models", nargs="+", help="model folders / names, optionally NAME=PATH")
    e.add_argument("--data", nargs="*", default=[], help="prepared shard folder(s)")
    e.add_argument("--val-groups", default=None,
                   help="comma-separated held-out groups (default: those recorded in the first "
                        "model's config)")
    e.add_argument("--openface", nargs="*", default=[],
                   help="evaluate on real OpenFace CSV tracks instead (with --audio-root)")
    e.add_argument("--audio-root", default=None, help="RAVDESS-style audio folder for --openface")
    e.add_argument("--n-boot", type=int, default=1000)
    e.add_argument("-o", "--output", default=None, help="folder for results.json and results.md")
    e.set_defaults(func=_run_evaluate)

    c = sub.add_parser("calibrate", help="fit per-AU output calibration on real OpenFace tracks",
                       description="Fit value = scale * raw + bias per dimension on clips with "
                                   "real OpenFace tracks (method 'floor': least squares that never "
                                   "turns a varying AU into a constant), report "
                                   "leave-one-speaker-out results, and save the calibrated model.")
    c.add_argument("models", nargs="+", help="model folders / names, optionally NAME=PATH; the "
                                             "first is saved calibrated")
    c.add_argument("--openface", nargs="+", required=True, help="OpenFace CSV tracks")
    c.add_argument("--audio-root", required=True, help="RAVDESS-style audio folder")
    c.add_argument("-o", "--output", required=True, help="folder for the calibrated first model")
    c.add_argument("--name", default=None, help="name of the calibrated model")
    c.add_argument("--n-boot", type=int, default=1000)
    c.add_argument("--method", choices=["floor", "moments", "least_squares"], default="floor",
                   help="calibration method (speechface.evaluation.calibration.fit_calibration)")
    c.add_argument("--floor", type=float, default=0.5,
                   help="'floor': the least fraction of the moment-matching scale (0.5)")
    c.set_defaults(func=_run_calibrate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.clips import load_training_clips, split_groups
    from ..evaluation.estimators import evaluate_estimators, openface_clips, report

    models = _load_models(args.models)
    first = next(iter(models.values()))
    train_mean = None
    if args.openface:
        if not args.audio_root:
            raise DataError("--openface needs --audio-root (where the speech files are)")
        clips = openface_clips(args.openface, audio_root=args.audio_root)
    elif args.data:
        clips = load_training_clips(args.data, first.space.name, "logmel", keep_audio=True)
        val_groups = (args.val_groups.split(",") if args.val_groups
                      else first.info.get("val_groups"))
        if not val_groups:
            raise DataError("no held-out groups: pass --val-groups (the model records none)")
        train, clips = split_groups(clips, list(val_groups), 0.0, 0)
        y = np.concatenate([c.targets[c.mask].numpy() for c in train])
        train_mean = y.mean(0)
    else:
        raise DataError("give --data (prepared shards) or --openface CSVs to evaluate on")
    results = evaluate_estimators(models, clips, train_mean, n_boot=args.n_boot)
    text = report(results, args.output, {"models": args.models, "n_clips": len(clips)})
    print(text)
    return 0


def _load_models(specs: list[str]) -> dict[str, Any]:
    from ..speech.model import SpeechEstimator

    models: dict[str, Any] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        model = SpeechEstimator.from_pretrained(path)
        models[name or model.network.arch.upper()] = model
    return models


def _run_calibrate(args: argparse.Namespace) -> int:
    from ..core._io import write_json
    from ..evaluation.calibration import (
        apply_calibration,
        cross_validate_calibration,
        fit_calibration,
    )
    from ..evaluation.estimators import openface_clips
    from ..evaluation.metrics import per_label_table, results_table, to_jsonable

    models = _load_models(args.models)
    clips = openface_clips(args.openface, audio_root=args.audio_root)
    if not 0.0 <= args.floor <= 1.0:
        raise SpeechfaceError(f"--floor must be within [0, 1], got {args.floor}")
    kw = {"method": args.method, "floor": args.floor}
    cv = cross_validate_calibration(models, clips, n_boot=args.n_boot, **kw)
    text = "\n".join([
        f"Leave-one-speaker-out on {cv['n_clips']} clips / {cv['n_frames']} frames of real "
        f"OpenFace tracks ({len(cv['groups'])} speakers); models calibrated on the other speakers.",
        "", results_table(cv["frame"]), "", per_label_table(cv["frame"], "mae"), "",
        per_label_table(cv["frame"], "pearson"), ""])
    print(text)
    first_name, first = next(iter(models.items()))
    scale, bias = fit_calibration(first, clips, **kw)
    cal = apply_calibration(first, scale, bias)
    cal.name = args.name or f"{first.name}-calibrated"
    cal.pretrained = True
    cal.info = {**first.info, "calibration": {
        "fitted_on": [c.name for c in clips],
        "kind": f"per-dimension affine, method {args.method} (floor {args.floor})",
        "scale": scale.tolist(), "bias": bias.tolist(),
        "uncarried": [lab for lab, s in zip(first.space.labels, scale) if s == 0.0]}}
    cal.save_pretrained(args.output)
    write_json(f"{args.output}/calibration_cv.json", to_jsonable(cv))
    with open(f"{args.output}/calibration_cv.md", "w") as f:
        f.write(text)
    print(f"calibrated model: {args.output}", file=sys.stderr)
    return 0
