"""speechface.training.ganimation: a few real steps on tiny images, checkpoints and resume."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest
import torch

from conftest import need_shared
from speechface.core.errors import DataError
from speechface.data.face_tensors import FaceTensors, load_face_tensors
from speechface.render.translators import GANimationCritic, Translator
from speechface.training.engine import CheckpointManager, config_from_dict
from speechface.training.ganimation import (
    CRITIC_WEIGHTS,
    GANimationTrainConfig,
    GANimationTrainer,
    gradient_penalty,
    total_variation,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_data(n: int = 12, seed: int = 0) -> FaceTensors:
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    conds = torch.rand(n, 17, generator=g) * 5
    return FaceTensors(images, conds, [f"Person_{i % 4}_{i:04d}.jpg" for i in range(n)])


def tiny_config(out, **kw) -> GANimationTrainConfig:
    base = dict(out_dir=str(out), image_size=32, conv_dim=8, repeat_num=1, batch_size=4,
                max_steps=6, n_critic=2, log_every=1, sample_every=3, checkpoint_every=3,
                progress=False)
    base.update(kw)
    return GANimationTrainConfig(**base)


def read_log(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_few_steps(tmp_path):
    data = tiny_data()
    trainer = GANimationTrainer(tiny_config(tmp_path), data.subset(list(range(8))),
                                data.subset(list(range(8, 12))))
    result = trainer.train()
    assert result["steps"] == 6 and result["generator_steps"] == 3
    rows = read_log(tmp_path / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    for r in rows:
        for k in ("loss_d", "gp", "d_cond"):
            assert math.isfinite(float(r[k]))
    g_rows = [r for r in rows if r["g_adv"]]
    assert g_rows and all(0 < float(r["attention_mean"]) < 1 for r in g_rows)
    assert all(math.isfinite(float(r[k])) for r in g_rows for k in ("g_cond", "cycle", "att_tv"))
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "step-000000003.png", "step-000000006.png"]
    model = Translator.from_pretrained(tmp_path / "final")
    assert model.pretrained and model.info["train_steps"] == 6
    _, att = model.translate(np.zeros((32, 32, 3), np.uint8), np.ones(17), return_attention=True)
    assert ((att > 0) & (att < 1)).all()
    ckpt = CheckpointManager(tmp_path / "checkpoints").latest()
    assert ckpt.name == "step-000000006" and (ckpt / CRITIC_WEIGHTS).is_file()
    state = CheckpointManager.load_state(ckpt)  # weights_only: plain tensors and containers
    assert set(state["optimizers"]) == {"g", "d"} and "rng" in state
    assert state["state"]["step"] == 6 and state["state"]["g_step"] == 3


def test_resume_matches_uninterrupted_run(tmp_path):
    data = tiny_data()
    train, val = data.subset(list(range(8))), data.subset(list(range(8, 12)))
    kw = dict(decay_fraction=0.0, sample_every=0, checkpoint_every=0, reuse_fakes=True)
    straight = GANimationTrainer(tiny_config(tmp_path / "a", max_steps=8, **kw), train, val)
    straight.train()
    first = GANimationTrainer(tiny_config(tmp_path / "b", max_steps=5, **kw), train, val)
    first.train()
    resumed = GANimationTrainer(tiny_config(tmp_path / "b", max_steps=8, **kw), train, val)
    resumed.setup()
    assert resumed.state.step == 5 and resumed.state.g_step == 2
    resumed.train()
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D)):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(p, q), name
    assert [r["step"] for r in read_log(tmp_path / "b" / "log.csv")] == [str(i) for i in range(1, 9)]


def test_attention_collapse_guard(tmp_path):
    data = tiny_data(8)
    cfg = tiny_config(tmp_path, collapse_threshold=0.0, collapse_patience=2, max_steps=4,
                      sample_every=0)
    trainer = GANimationTrainer(cfg, data, None)
    with pytest.warns(RuntimeWarning, match="collapsing to all-ones"):
        result = trainer.train()
    assert result["collapse_warnings"] >= 1 and result["lambda_mask"] > cfg.lambda_mask
    assert float(read_log(tmp_path / "log.csv")[-1]["lambda_mask"]) == result["lambda_mask"]


def test_losses_helpers():
    flat = torch.ones(2, 1, 8, 8)
    assert total_variation(flat) == 0
    step = torch.zeros(1, 1, 4, 4)
    step[..., 2:] = 1  # one vertical edge of height 4
    assert total_variation(step) == 4
    critic = GANimationCritic(image_size=32, conv_dim=4)
    gp = gradient_penalty(critic, torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert gp.ndim == 0 and torch.isfinite(gp) and gp.requires_grad


def test_config_and_data_errors(tmp_path):
    with pytest.raises(DataError, match="unknown option"):
        config_from_dict(GANimationTrainConfig, {"max_step": 3})
    with pytest.raises(DataError, match=">= 1"):
        GANimationTrainConfig(n_critic=0)
    with pytest.raises(DataError, match="needs 'images'"):
        GANimationTrainer(GANimationTrainConfig(out_dir=str(tmp_path))).setup()
    with pytest.raises(DataError, match="uint8"):
        FaceTensors(torch.zeros(2, 3, 8, 8), torch.zeros(2, 17), ["a", "b"])
    data = tiny_data(4)
    with pytest.raises(DataError, match="config says image_size=64"):
        GANimationTrainer(tiny_config(tmp_path, image_size=64), data, None).setup()


def test_cli_parser():
    from speechface.training.config import add_train_parsers

    parser = argparse.ArgumentParser()
    add_train_parsers(parser.add_subparsers())
    args = parser.parse_args(["ganimation", "--config", "c.yaml", "--set", "max_steps=5"])
    assert args.config == "c.yaml" and args.set == ["max_steps=5"]
    assert args.train_command == "ganimation"


def test_packaged_config_file_is_valid():
    from pathlib import Path

    from speechface.training.engine import load_config_file

    path = Path(__file__).resolve().parents[1] / "configs" / "ganimation_faces128.yaml"
    pytest.importorskip("yaml")
    cfg = config_from_dict(GANimationTrainConfig, load_config_file(path))
    assert cfg.image_size == 64 and cfg.n_critic == 5 and cfg.lambda_gp == 10


def test_real_sample_faces_train_step(tmp_path):
    root = need_shared("data", "ganimation_sample")
    data = load_face_tensors(str(root / "imgs"), str(root / "aus_openface.csv"), 32)
    assert data.images.shape == (4, 3, 32, 32) and data.conds.shape == (4, 17)
    trainer = GANimationTrainer(tiny_config(tmp_path, max_steps=2, batch_size=2,
                                            sample_every=0), data, None)
    assert trainer.train()["generator_steps"] == 1
