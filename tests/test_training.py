"""EstimatorTrainer: learning, checkpoints, resume equivalence, CLI, DDP with 2 CPU processes."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speechface import AUEstimator
from speechface.data.shards import write_clip, write_manifest
from speechface.training import EstimatorTrainConfig, EstimatorTrainer, TrainClip

REPO = Path(__file__).resolve().parents[1]


def synthetic_clips(n: int = 12, seed: int = 0) -> list[TrainClip]:
    """Clips whose targets are a fixed function of the features (so a model can learn them)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(80, 17, generator=g) * 0.3
    clips = []
    for i in range(n):
        t = 60 + 7 * i
        f = torch.randn(t, 80, generator=g)
        y = (f @ w).clamp(0, 5)
        clips.append(TrainClip(f"c{i}", f"spk{i % 4}", f, y, torch.rand(t, generator=g) > 0.1))
    return clips


def _cfg(out: Path, **kw) -> EstimatorTrainConfig:
    base = dict(out_dir=str(out), arch="cnn", epochs=4, batch_size=4, crop_frames=32, lr=3e-3,
                progress=False, model_args={"channels": [16, 16, 8], "dilations": [1, 1, 1],
                                            "proj": 32, "dropout": 0.1}, patience=0)
    base.update(kw)
    return EstimatorTrainConfig(**base)


def test_training_learns_and_writes_a_loadable_model(tmp_path: Path) -> None:
    clips = synthetic_clips()
    result = EstimatorTrainer(_cfg(tmp_path, epochs=6), clips=clips).train()
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert len(rows) == 6
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert result["val_clips"] > 0 and result["train_clips"] + result["val_clips"] == len(clips)
    model = AUEstimator.from_pretrained(tmp_path / "best")
    assert model.pretrained  # trained weights say so
    train_groups = set(model.info["train_groups"])
    assert train_groups.isdisjoint(model.info["val_groups"])  # speaker-disjoint split
    assert (tmp_path / "checkpoints" / "latest").read_text().strip().startswith("step-")


def test_exclude_groups_leaves_a_test_split_out_of_training_and_validation(tmp_path: Path) -> None:
    clips = synthetic_clips()
    tr = EstimatorTrainer(_cfg(tmp_path, epochs=1, val_groups=["spk1"], exclude_groups=["spk3"]),
                          clips=clips)
    tr.train()
    assert {c.group for c in tr.train_clips} == {"spk0", "spk2"}
    assert {c.group for c in tr.val_clips} == {"spk1"}
    assert AUEstimator.from_pretrained(tmp_path / "best").info["excluded_groups"] == ["spk3"]
    with pytest.raises(Exception, match="exclude_groups not in the data: nobody"):
        EstimatorTrainer(_cfg(tmp_path / "x", exclude_groups=["nobody"]), clips=clips).setup()


@pytest.mark.parametrize("every", [0, 3])
def test_interrupted_training_resumes_to_identical_weights(tmp_path: Path, every: int) -> None:
    clips = synthetic_clips()
    full = EstimatorTrainer(_cfg(tmp_path / "full", checkpoint_every=every), clips=clips)
    full.train()
    # stop early (as a kill would), then rerun the same config: it resumes and finishes
    part = EstimatorTrainer(_cfg(tmp_path / "part", checkpoint_every=every, max_steps=7), clips=clips)
    part.train()
    resumed = EstimatorTrainer(_cfg(tmp_path / "part", checkpoint_every=every), clips=clips)
    resumed.setup()
    assert resumed.state.step > 0
    resumed.train()
    for (n, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=f"{n} differs after resume")


def test_utterance_level_lstm_mfcc_trains(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    clips = [TrainClip(f"u{i}", f"s{i % 3}", torch.randn(40 + i, 39, generator=g),
                       torch.full((40 + i, 17), float(i % 3)), torch.ones(40 + i, dtype=torch.bool))
             for i in range(9)]
    cfg = _cfg(tmp_path, arch="lstm_mfcc", feature="mfcc", model_args={"hidden": 16}, epochs=2)
    EstimatorTrainer(cfg, clips=clips).train()
    model = AUEstimator.from_pretrained(tmp_path / "best")
    assert not model.network.frame_level and model.config()["feature"]["name"] == "mfcc"


def _write_shards(root: Path, n: int = 8) -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        frames = 50 + 5 * i
        audio = (0.1 * rng.standard_normal(frames * 640)).astype(np.float32)
        arrays = {"audio": audio, "features": rng.standard_normal((80, frames)).astype(np.float32),
                  "targets_au17": rng.uniform(0, 5, (frames, 17)).astype(np.float32),
                  "targets_landmarks68": rng.uniform(0, 1, (frames, 136)).astype(np.float32),
                  "blendshapes": np.zeros((frames, 52), np.float32), "mask": np.ones(frames, bool)}
        records.append(write_clip(root, f"clip{i}", arrays, {"speaker": f"s{i % 4}"}))
    write_manifest(root, records)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, **(env or {}), OMP_NUM_THREADS="1")
    return subprocess.run(list(args), capture_output=True, text=True, cwd=REPO, env=e, timeout=600)


@pytest.mark.slow
def test_cli_train_and_ddp_with_two_cpu_processes(tmp_path: Path) -> None:
    _write_shards(tmp_path / "shards")
    cfg = {"data": str(tmp_path / "shards"), "arch": "mlp", "epochs": 3, "batch_size": 4,
           "crop_frames": 32, "val_groups": ["s0"], "progress": False, "patience": 0}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    single = _run(sys.executable, "-m", "speechface.cli", "train", "estimator", "--config",
                  str(tmp_path / "cfg.json"), "--set", f"out_dir={tmp_path / 'one'}")
    assert single.returncode == 0, single.stderr
    ddp = _run(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29517", "-m", "speechface.cli", "train", "estimator", "--config",
               str(tmp_path / "cfg.json"), "--set", f"out_dir={tmp_path / 'two'}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = [float(r["val_loss"]) for r in csv.DictReader((tmp_path / "one" / "log.csv").open())]
    two = [float(r["val_loss"]) for r in csv.DictReader((tmp_path / "two" / "log.csv").open())]
    assert len(one) == len(two) == 3
    # the same shape: both curves fall, and they stay close to each other
    assert one[-1] < one[0] and two[-1] < two[0]
    assert abs(one[-1] - two[-1]) < 0.25 * one[0]
    assert AUEstimator.from_pretrained(tmp_path / "two" / "best").pretrained is True


def test_config_errors_are_clear(tmp_path: Path) -> None:
    from speechface.cli import main

    (tmp_path / "bad.json").write_text(json.dumps({"data": "x", "epochz": 3}))
    assert main(["train", "estimator", "--config", str(tmp_path / "bad.json")]) == 2


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_finishes_with_the_same_weights(tmp_path: Path) -> None:
    """Kill -9 a CLI training run after its first checkpoint; the rerun resumes and matches."""
    import signal
    import time

    from safetensors.torch import load_file

    _write_shards(tmp_path / "shards", n=12)
    cfg = {"data": str(tmp_path / "shards"), "arch": "mlp", "epochs": 4, "batch_size": 2,
           "crop_frames": 16, "val_groups": ["s0"], "progress": False, "patience": 0,
           "checkpoint_every": 3, "seed": 3}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "speechface.cli", "train", "estimator", "--config",
           str(tmp_path / "cfg.json"), "--set"]
    ref = _run(*cmd, f"out_dir={tmp_path / 'ref'}")
    assert ref.returncode == 0, ref.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([*cmd, f"out_dir={tmp_path / 'killed'}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = pointer.read_text().strip()
    rerun = _run(*cmd, f"out_dir={tmp_path / 'killed'}")
    assert rerun.returncode == 0, rerun.stderr
    # the newest complete checkpoint: the pointer's, or a newer one renamed into place just
    # before the kill, before the pointer was moved to it
    resumed = re.search(r"resumed from \S+/(step-\d{9})", rerun.stderr)
    assert resumed is not None and resumed.group(1) >= killed_at, rerun.stderr
    a = load_file(str(tmp_path / "ref" / "best" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "best" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=f"{k} differs")
