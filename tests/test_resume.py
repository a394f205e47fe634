"""A killed run of each of the five recipes, rerun with the same folder, ends with bit-identical
weights to a run that was never interrupted.

The kill is an exception raised inside the loop a step or two after a checkpoint (the process
state is lost as with SIGKILL; ``tests/test_training.py`` also SIGKILLs a real CLI run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechface.data.clips import TrainClip
from speechface.data.face_tensors import FaceTensors
from speechface.data.ferplus import FerPlus
from speechface.spaces import get_space
from speechface.training import (
    EmotionTrainConfig,
    EstimatorTrainer,
    ExpressionTrainConfig,
    ExpressionTrainer,
    GANimationTrainConfig,
    GANimationTrainer,
    LandmarkWarpTrainConfig,
    LandmarkWarpTrainer,
    UtteranceEmotionTrainer,
)
from speechface.training.engine import Run
from test_training import _cfg, synthetic_clips


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing is cleaned up."""


pytestmark = pytest.mark.usefixtures("one_thread")


def _killed_then_resumed(monkeypatch, make, kill_at: int):
    """Run ``make()``'s trainer until it has taken ``kill_at`` steps, kill it, rerun it."""
    advance = Run.advance

    def advance_then_die(self: Run) -> None:
        advance(self)
        if self.state.step == kill_at:
            raise Killed

    monkeypatch.setattr(Run, "advance", advance_then_die)
    with pytest.raises(Killed):
        make().train()
    monkeypatch.setattr(Run, "advance", advance)
    again = make()
    again.setup()
    assert 0 < again.state.step < kill_at  # resumed from an earlier checkpoint, not afresh
    again.train()
    return again


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs after resume"


def _same_folder(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_estimator(tmp_path, monkeypatch) -> None:
    clips = synthetic_clips()

    def make(out: str) -> EstimatorTrainer:
        return EstimatorTrainer(_cfg(tmp_path / out, epochs=3, checkpoint_every=2), clips=clips)

    ref = make("ref")
    ref.train()
    resumed = _killed_then_resumed(monkeypatch, lambda: make("killed"), kill_at=5)
    _same(ref.model, resumed.model)
    _same_folder(tmp_path / "ref" / "best", tmp_path / "killed" / "best")


def _speech_emotion_clips() -> tuple[list[TrainClip], list[TrainClip]]:
    g = torch.Generator().manual_seed(0)
    clips = []
    for i in range(10):
        y = torch.zeros(50 + 3 * i, 8)
        y[:, i % 7] = 1
        clips.append(TrainClip(f"u{i}", f"Actor_{i % 5:02d}", torch.randn(50 + 3 * i, 80, generator=g),
                               y, torch.ones(50 + 3 * i, dtype=torch.bool)))
    return clips[:8], clips[8:]


def test_emotion(tmp_path, monkeypatch) -> None:
    train, val = _speech_emotion_clips()

    def make(out: str) -> UtteranceEmotionTrainer:
        cfg = EmotionTrainConfig(out_dir=str(tmp_path / out), arch="cnn", epochs=3, batch_size=3,
                                 model_args={"channels": [8], "dilations": [1], "proj": 8},
                                 freq_mask=8, time_mask=10, gain_db=3.0, checkpoint_every=2,
                                 patience=0, progress=False)
        return UtteranceEmotionTrainer(cfg, clips=train, val_clips=val)

    ref = make("ref")
    ref.train()
    resumed = _killed_then_resumed(monkeypatch, lambda: make("killed"), kill_at=5)
    _same(ref.model, resumed.model)


def _fer(n: int, seed: int, split: str) -> FerPlus:
    rng = np.random.default_rng(seed)
    votes = rng.integers(0, 3, (n, 10))
    votes[np.arange(n), rng.integers(0, 8, n)] += 6      # a clear top emotion
    votes[:, 8:] = 0
    return FerPlus(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), votes,
                   np.array([f"fer{i:07d}.png" for i in range(n)]), split)


def test_expression(tmp_path, monkeypatch) -> None:
    train, val = _fer(40, 0, "train"), _fer(16, 1, "valid")

    def make(out: str) -> ExpressionTrainer:
        cfg = ExpressionTrainConfig(out_dir=str(tmp_path / out), batch_size=8, epochs=2,
                                    model_args={"channels": [4, 8], "depths": [1, 1]},
                                    checkpoint_every=3, brightness=0.1, contrast=0.1,
                                    erase_prob=0.5, scheme="probability", progress=False, seed=2)
        return ExpressionTrainer(cfg, train, val)

    ref = make("ref")
    ref.train()
    resumed = _killed_then_resumed(monkeypatch, lambda: make("killed"), kill_at=7)
    _same(ref.model, resumed.model)


def _faces(n: int, dim: int, seed: int = 0) -> FaceTensors:
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    if dim == 136:
        conds = get_space("landmarks68").neutral_tensor()[None].repeat(n, 1) * 0.6 + 0.2
    else:
        conds = torch.rand(n, dim, generator=g) * 5
    return FaceTensors(images, conds, [f"Person_{i % 4}_{i:04d}.jpg" for i in range(n)])


def test_ganimation(tmp_path, monkeypatch) -> None:
    data = _faces(12, 17)
    train, val = data.subset(list(range(8))), data.subset(list(range(8, 12)))

    def make(out: str) -> GANimationTrainer:
        cfg = GANimationTrainConfig(out_dir=str(tmp_path / out), image_size=32, conv_dim=8,
                                    repeat_num=1, batch_size=3, max_steps=9, n_critic=2,
                                    log_every=2, sample_every=4, checkpoint_every=3,
                                    reuse_fakes=True, progress=False)
        return GANimationTrainer(cfg, train, val)

    ref = make("ref")
    ref.train()
    resumed = _killed_then_resumed(monkeypatch, lambda: make("killed"), kill_at=8)
    _same(ref.G, resumed.G)
    _same(ref.D, resumed.D)
    _same_folder(tmp_path / "ref" / "final", tmp_path / "killed" / "final")


def test_warp(tmp_path, monkeypatch) -> None:
    faces = _faces(8, 136)

    def make(out: str) -> LandmarkWarpTrainer:
        cfg = LandmarkWarpTrainConfig(out_dir=str(tmp_path / out), image_size=32,
                                      model_args={"conv_dim": 8, "depth": 2}, batch_size=3,
                                      pair_batch=0, max_steps=9, log_every=2, sample_every=4,
                                      checkpoint_every=3, progress=False)
        return LandmarkWarpTrainer(cfg, faces)

    ref = make("ref")
    ref.train()
    resumed = _killed_then_resumed(monkeypatch, lambda: make("killed"), kill_at=8)
    _same(ref.G, resumed.G)
    _same_folder(tmp_path / "ref" / "final", tmp_path / "killed" / "final")


@pytest.mark.slow
def test_every_recipe_runs_on_two_processes(tmp_path) -> None:
    """torchrun with 2 CPU processes: every recipe trains, ranks keep identical weights, only
    rank 0 writes the output folder."""
    import json
    import os
    import subprocess
    import sys

    script = Path(__file__).with_name("ddp_recipes.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29533", str(script), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, final in (("ganimation", "final"), ("warp", "final"), ("expression", "best"),
                        ("emotion", "best")):
        r0 = json.loads((tmp_path / f"{name}.rank0.json").read_text())
        r1 = json.loads((tmp_path / f"{name}.rank1.json").read_text())
        assert r0 == r1, f"{name}: the ranks' weights drifted apart"
        assert (tmp_path / name / final / "model.safetensors").is_file()
        assert (tmp_path / name / "metrics.json").is_file()
