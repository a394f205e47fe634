"""Fit a speech model's ``info["dynamics_gain"]`` on its training clips and save a copy.

:func:`speechface.animate` widens a model's predicted movement around each utterance's mean by
this per-dimension gain (global-variance compensation; metrics always use the raw outputs). It
is fitted by :func:`speechface.evaluation.calibration.fit_dynamics_gain` on the training clips of
the model's training config: the first ``data`` folder (not the augmented copies) without the
config's ``val_groups``. This is how the packaged ``cnn.au17-whisper`` (the model ``animate``
drives with) got its gain::

    python recipes/dynamics_gain.py runs/au17w/cnn_wide_ccc/best \\
        --config configs/cause_cnn_whisper_ccc.yaml -o runs/au17w/animate
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from speechface import SpeechEstimator
from speechface.data.clips import load_training_clips
from speechface.evaluation.calibration import fit_dynamics_gain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model folder or packaged name")
    ap.add_argument("--config", required=True, help="the model's training config (YAML)")
    ap.add_argument("-o", "--output", required=True, help="folder for the model with its gain")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = SpeechEstimator.from_pretrained(args.model)
    cfg = yaml.safe_load(Path(args.config).read_text())
    held = set(cfg.get("val_groups") or [])
    data = cfg["data"] if isinstance(cfg["data"], str) else cfg["data"][0]
    clips = [c for c in load_training_clips(data, model.space.name, "logmel", keep_audio=True)
             if c.group not in held]
    fit = fit_dynamics_gain(model, clips)
    model.info = {**(model.info or {}), "dynamics_gain": fit["gain"],
                  "dynamics_gain_fit": {k: v for k, v in fit.items() if k != "gain"}}
    model.pretrained = True
    out = model.save_pretrained(Path(args.output))
    print(json.dumps({"output": str(out), "dynamics_gain": fit["gain"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
