"""Add your own estimator architecture: one class, one decorator, then train, save, load, predict.

``@ESTIMATORS.register("tcn_tiny")`` puts the class in the registry, so everything that works
for the built-in architectures works for it: ``AUEstimator.create("tcn_tiny")``, the
``EstimatorTrainer`` (``arch="tcn_tiny"``), ``save_pretrained`` (its constructor arguments go
to ``config.json``) and ``AUEstimator.from_pretrained(folder)``, which rebuilds it from the
registry. (The process that loads the folder must have imported the class, i.e. run the
decorator, first.)

The training data here is synthetic by default, so the example needs nothing but the library:
speech-like sounds whose loudness drives the "jaw drop" (AU26) and "lips part" (AU25) targets.
A working estimator learns to open the mouth when the sound is loud, which the evaluation
against the Zero and Mean predictors shows. With ``--data DIR`` it trains on prepared
talking-face shards instead (``speechface prepare av``, e.g. ``prepared/av_mediapipe``).

Run from the repository root::

    python examples/custom_estimator.py                  # -> runs/examples/custom_estimator
    python examples/custom_estimator.py --fast -o /tmp/custom   # CI: 24 clips, 3 epochs
    python examples/custom_estimator.py --data prepared/av_mediapipe -o runs/custom_real

Outputs in ``-o``: ``run/`` (trainer), ``model/`` (the saved model folder) and
``speech_aus.csv`` (the reloaded model's AUs for ``examples/data/speech.wav``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from speechface import AUEstimator
from speechface.core.registry import ESTIMATORS
from speechface.speech.estimators import Estimator
from speechface.speech.estimators.base import length_mask

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- the new architecture
@ESTIMATORS.register("tcn_tiny")
class TinyTCN(Estimator):
    """A small non-causal temporal convolution network: N feature frames in, N AU frames out.

    Args:
        in_features: features per frame (80 log-mel bands).
        space: conditioning space (``"au17"``; any space works).
        hidden: channels of the hidden layers.
        dilations: one residual 3-tap convolution block per entry; frame t sees
            ``sum(dilations)`` frames on each side.
    """

    paper = "speechface example (not a published model)"

    def __init__(self, in_features: int = 80, space: str = "au17", hidden: int = 64,
                 dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__(in_features, space)
        self.dilations = tuple(int(d) for d in dilations)
        self.inp = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(hidden, hidden, 3, dilation=d, padding=d), nn.GELU())
            for d in self.dilations)
        self.out = nn.Linear(hidden, self.out_dim)

    @property
    def lookahead(self) -> int:
        return sum(self.dilations)

    @property
    def receptive_field(self) -> int:
        return 2 * sum(self.dilations) + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, in_features)`` -> ``(batch, frames, space.dim)`` raw outputs."""
        mask = length_mask(lengths, x.shape[1], x.device)
        keep = None if mask is None else mask[:, None, :].to(x.dtype)
        h = self.inp(x).transpose(1, 2)                      # (batch, hidden, frames)
        for block in self.blocks:
            if keep is not None:   # zero the padding, as the convolution's own edge padding is:
                h = h * keep       # a padded batch gives the same values as one item alone
            h = h + block(h)
        return self.out(h.transpose(1, 2))


# --------------------------------------------------------------------------- synthetic data
def synthetic_clips(n: int, seconds: float, seed: int = 0):
    """Speech-like clips (a voiced buzz with syllable-rate loudness) and AU targets from it."""
    from speechface.core.registry import FEATURES
    from speechface.data.clips import TrainClip
    from speechface.spaces import get_space

    rng = np.random.default_rng(seed)
    fx = FEATURES.create("logmel")
    space = get_space("au17")
    i25, i26 = space.index("AU25"), space.index("AU26")
    sr, hop = 16000, 640
    frames = int(seconds * 25)
    t = np.arange(frames * hop) / sr
    clips = []
    for k in range(n):
        # loudness: syllables of 120-300 ms with pauses, smoothed to a 25 fps envelope
        env = np.zeros(frames)
        pos = int(rng.integers(0, 10))
        while pos < frames:
            length = int(rng.integers(3, 8))
            env[pos:pos + length] = rng.uniform(0.4, 1.0)
            pos += length + int(rng.integers(1, 10))
        env = np.convolve(env, np.hanning(5) / np.hanning(5).sum(), mode="same")
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        buzz = sum(np.sin(h * phase) / h for h in range(1, 16))
        wave = 0.2 * np.repeat(env, hop) * buzz + 0.002 * rng.standard_normal(len(t))
        audio = torch.from_numpy(wave.astype(np.float32))
        with torch.no_grad():
            feats = fx(audio).T.contiguous()[:frames]        # (frames, 80), raw log-mel
        targets = np.zeros((len(feats), space.dim), np.float32)
        targets[:, i26] = 3.0 * env[:len(feats)]             # loud -> jaw open
        targets[:, i25] = np.clip(4.0 * env[:len(feats)], 0, 5)
        clips.append(TrainClip(name=f"synthetic_{k:03d}", group=f"synthetic_{k:03d}",
                               features=feats, targets=torch.from_numpy(targets),
                               mask=torch.ones(len(feats), dtype=torch.bool), audio=audio))
    return clips


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="runs/examples/custom_estimator", help="output folder")
    p.add_argument("--data", default=None, help="prepared shards to train on (default: synthetic)")
    p.add_argument("--epochs", type=int, default=None, help="default 15, --fast 3")
    p.add_argument("--fast", action="store_true", help="CI: 24 short synthetic clips, 3 epochs")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    out = Path(args.output)
    if fast:  # tiny batches: one thread is faster than a thread pool (and kind to busy CI)
        torch.set_num_threads(1)

    from speechface.data.clips import load_training_clips, split_groups
    from speechface.evaluation import evaluate_estimators
    from speechface.evaluation.metrics import frame_mean, results_table
    from speechface.training import EstimatorTrainConfig, EstimatorTrainer

    print("registered:", ", ".join(ESTIMATORS.list("*tcn*")), "| e.g.",
          AUEstimator.create("tcn_tiny", hidden=16))

    if args.data:
        clips = load_training_clips(args.data, "au17", "logmel", keep_audio=True)
        source = f"prepared shards {args.data}"
    else:
        clips = synthetic_clips(24 if fast else 160, 3.0 if fast else 4.0)
        source = "synthetic speech-like clips (loudness -> AU25/AU26)"
    train, val = split_groups(clips, None, 0.2, seed=0)  # group-disjoint
    print(f"{source}: training {len(train)} clips, validation {len(val)} clips")

    cfg = EstimatorTrainConfig(
        arch="tcn_tiny", model_args={"hidden": 32 if fast else 64, "dilations": [1, 2, 4]},
        space="au17", out_dir=str(out / "run"), epochs=args.epochs or (3 if fast else 15),
        batch_size=8, crop_frames=64, lr=3e-3, patience=5, seed=0, progress=not fast,
        name="tcn_tiny.au17-example", info={"data": source})
    EstimatorTrainer(cfg, clips=train, val_clips=val).train()

    # the trainer saved the best epoch; mark it trained and save the model folder
    model = AUEstimator.from_pretrained(out / "run" / "best")
    model.pretrained = True
    model.save_pretrained(out / "model")

    # load it back (the registry rebuilds TinyTCN from config.json) and use it
    model = AUEstimator.from_pretrained(out / "model")
    print("loaded", model)
    train_mean = frame_mean([c.targets.numpy() for c in train], [c.mask.numpy() for c in train])
    res = evaluate_estimators({"TinyTCN": model}, val, train_mean, n_boot=200)
    print(results_table(res["frame"]))
    for label in ("AU25", "AU26"):
        r = res["frame"]["TinyTCN"]["per_label"][label]
        print(f"  {label}: MAE {r['mae']:.3f}, Pearson r {r['pearson']:.2f}")

    result = model.predict(HERE / "data" / "speech.wav")
    result.to_csv(out / "speech_aus.csv")
    print(f"examples/data/speech.wav -> {len(result)} frames; wrote {out / 'speech_aus.csv'} "
          f"and the model folder {out / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
