"""Fit the output delay of packaged speech models on in-sync development clips and save copies.

The shared ``av_clips`` MP4s leave their AAC encoder warm-up unmarked, so until speechface
dropped it (:func:`speechface.audio.waveform.unsignalled_aac_priming`) their speech was decoded
64 ms late against the video, and every model trained on them learned to show the face of
speech it had not heard yet. On in-sync speech (a wav file, RAVDESS, speechface's own videos)
those models move the mouth before the sound. :attr:`SpeechEstimator.output_delay
<speechface.speech.SpeechEstimator.output_delay>` shifts their output back.

The delay is chosen with :func:`speechface.evaluation.calibration.fit_output_delay` (mean per-clip
Pearson r of ``--columns`` with the teacher's targets, over delays 0-4 frames), on clips prepared
with the warm-up dropped (``speechface prepare av`` from this version on; shards prepared before
it keep the 64 ms lag and must be prepared again):

- ``--dev-model`` given: the models trained on the development split (the training config's
  ``val_groups`` left out), scored on those ``val_groups`` (speakers they never heard); the
  score curves of several dev models are averaged;
- else ``--clips train``: the packaged model itself, scored on its own training clips (the
  config's speakers minus its ``val_groups``), for models without a development twin.

How the packaged models got their delays (see their cards)::

    python recipes/output_delay.py cnn.au17-whisper cnn.au17-whisper-openface \\
        --dev-model runs/au17w/ccc_dev_s0/best runs/au17w/ccc_dev_s1/best \\
        --config configs/cause_cnn_whisper_ccc_dev.yaml --columns AU25 AU26 -o runs/delay/au
    python recipes/output_delay.py cnn.blendshapes52-whisper cnn.landmarks68-arkit \\
        --dev-model runs/blendshapes52/cnn_whisper_dev_s{0,1,2}/best \\
        --config configs/arkit_cnn_whisper_dev.yaml -o runs/delay/arkit \\
        --columns jawOpen mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight
    python recipes/output_delay.py dcnn.au17-mediapipe --clips train \\
        --config configs/cause_dcnn.yaml --columns AU25 AU26 -o runs/delay/lm_dcnn
    python recipes/output_delay.py cnn.blendshapes52-logmel --clips train \\
        --config configs/arkit_cnn.yaml -o runs/delay/lm_arkit \\
        --columns jawOpen mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight

The result goes into the copies' ``config.json`` (``output_delay_frames``, and the scores per
delay under ``info.output_delay_fit``); copy that file into ``src/speechface/pretrained/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from speechface import SpeechEstimator
from speechface.data.clips import load_training_clips
from speechface.evaluation.calibration import fit_output_delay


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="packaged names or folders to give the delay")
    ap.add_argument("--config", required=True,
                    help="training config (YAML) whose val_groups are the development speakers "
                         "(with --dev-model) or the held-out ones to leave out (--clips train)")
    ap.add_argument("--dev-model", nargs="*", default=[], help="models trained without the "
                    "config's val_groups (score on those speakers)")
    ap.add_argument("--clips", choices=["dev", "train"], default="dev")
    ap.add_argument("--data", default="prepared/av_mediapipe",
                    help="shards prepared with the warm-up fix (default: %(default)s)")
    ap.add_argument("--columns", nargs="+", required=True, help="outputs to line up (e.g. AU25 AU26)")
    ap.add_argument("-o", "--output", required=True, help="folder for the delayed copies")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    cfg = yaml.safe_load(Path(args.config).read_text())
    held = set(cfg.get("val_groups") or [])
    first = SpeechEstimator.from_pretrained(args.models[0])
    dev = args.clips == "dev"
    if dev != bool(args.dev_model):
        ap.error("give --dev-model with --clips dev (the default), or --clips train without it")
    scorers = [SpeechEstimator.from_pretrained(m) for m in args.dev_model] if dev else [first]
    feature = "logmel"  # features are recomputed from the audio by the models themselves
    clips = [c for c in load_training_clips(args.data, first.space.name, feature, keep_audio=True)
             if (c.group in held) == dev]   # dev: the held-out groups; train: all the others
    fits = [fit_output_delay(m, clips, columns=args.columns) for m in scorers]
    delays = list(fits[0]["scores"])
    mean = {d: float(np.mean([f["scores"][d] for f in fits])) for d in delays}
    best = max(delays, key=lambda d: (mean[d], -d))
    report = {"delay_frames": best, "mean_r": {str(d): round(v, 4) for d, v in mean.items()},
              "per_model": [f["scores"][best] for f in fits], "n_clips": fits[0]["n_clips"],
              "clips": args.clips, "columns": args.columns, "data": args.data}
    out_root = Path(args.output)
    for name in args.models:
        model = SpeechEstimator.from_pretrained(name)
        model.output_delay = best
        model.info = {**(model.info or {}), "output_delay_fit": report}
        model.pretrained = True
        report.setdefault("saved", []).append(str(model.save_pretrained(out_root / Path(name).name)))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
