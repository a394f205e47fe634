"""Run under torchrun by tests/test_resume.py: each recipe, tiny, on 2 CPU processes.

Every rank writes the sum of squares of each trained network's parameters to
OUT/<recipe>.rank<R>.json; data-parallel training must leave the ranks' weights identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from speechface.training import (  # noqa: E402
    EmotionTrainConfig,
    ExpressionTrainConfig,
    ExpressionTrainer,
    GANimationTrainConfig,
    GANimationTrainer,
    LandmarkWarpTrainConfig,
    LandmarkWarpTrainer,
    UtteranceEmotionTrainer,
)
from test_resume import _faces, _fer, _speech_emotion_clips  # noqa: E402


def main(out: Path) -> None:
    torch.set_num_threads(1)
    runs = {
        "ganimation": lambda: GANimationTrainer(GANimationTrainConfig(
            out_dir=str(out / "ganimation"), image_size=32, conv_dim=8, repeat_num=1,
            batch_size=2, max_steps=4, n_critic=2, checkpoint_every=2, sample_every=0,
            progress=False), _faces(12, 17)),
        "warp": lambda: LandmarkWarpTrainer(LandmarkWarpTrainConfig(
            out_dir=str(out / "warp"), image_size=32, model_args={"conv_dim": 8, "depth": 2},
            batch_size=2, pair_batch=0, max_steps=4, checkpoint_every=2, sample_every=0,
            progress=False), _faces(8, 136)),
        "expression": lambda: ExpressionTrainer(ExpressionTrainConfig(
            out_dir=str(out / "expression"), batch_size=4, epochs=1, progress=False,
            model_args={"channels": [4, 8], "depths": [1, 1]}), _fer(24, 0, "train"),
            _fer(8, 1, "valid")),
        "emotion": lambda: UtteranceEmotionTrainer(EmotionTrainConfig(
            out_dir=str(out / "emotion"), arch="cnn", epochs=2, batch_size=2, patience=0,
            model_args={"channels": [8], "dilations": [1], "proj": 8}, progress=False),
            *_speech_emotion_clips()),
    }
    for name, make in runs.items():
        trainer = make()
        trainer.train()
        net = getattr(trainer, "G", None) or trainer.model
        rank = trainer.run.dist.rank
        sums = {k: float(p.detach().double().pow(2).sum()) for k, p in net.named_parameters()}
        (out / f"{name}.rank{rank}.json").write_text(json.dumps(sums))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
