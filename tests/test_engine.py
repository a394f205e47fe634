"""The training engine: config checks before anything is allocated, checkpoint fallback,
metrics without Infinity, the metric window."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from speechface.cli import main
from speechface.core.errors import DataError
from speechface.training import EstimatorTrainConfig, EstimatorTrainer
from speechface.training.engine import (
    CheckpointManager,
    MetricWindow,
    config_from_dict,
    finite_json,
    load_config_file,
)
from test_training import _cfg, synthetic_clips


def _train_cli(tmp_path: Path, text: str, capsys, suffix: str = ".yaml", *extra: str
               ) -> tuple[int, str]:
    cfg = tmp_path / f"cfg{suffix}"
    cfg.write_text(text)
    out = tmp_path / "run"
    code = main(["train", "estimator", "--config", str(cfg), "--set", f"out_dir={out}", *extra])
    err = capsys.readouterr().err.strip()
    assert not out.exists(), "nothing may be written before the config is checked"
    return code, err


@pytest.mark.parametrize("text, field", [
    ("data: x\nbatch_size: abc\n", "batch_size must be an integer, got 'abc'"),
    ("data: x\nbatch_size: 0\n", "batch_size must be >= 1, got 0"),
    ("data: x\nbatch_size: -4\n", "batch_size must be >= 1, got -4"),
    ("data: x\ncrop_frames: 0\n", "crop_frames must be >= 1, got 0"),
    ("data: x\nepochs: -1\n", "epochs must be >= 1, got -1"),
    ("data: x\nlr: .nan\n", "lr must be a number"),
    ("data: x\nval_fraction: 1.5\n", "val_fraction must be in [0,1]"),
    ("data: x\nmodel_args: [1, 2]\n", "model_args must be a mapping"),
    ("data: x\nprogress: maybe\n", "progress must be true or false"),
    ("data: x\nepochz: 3\n", "unknown option(s) epochz"),
    ("data: x\nbatch_size: [\n", "not valid YAML at line"),
    ("- just\n- a list\n", "a config must be a mapping"),
])
def test_bad_configs_give_one_line_naming_the_field(tmp_path, capsys, text, field) -> None:
    code, err = _train_cli(tmp_path, text, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and field in err, err
    assert "Traceback" not in err


def test_unsafe_yaml_tag_is_refused_and_never_run(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    code, err = _train_cli(tmp_path, f"data: !!python/object/apply:os.system ['touch {marker}']\n",
                           capsys)
    assert code == 2 and "not valid YAML" in err and len(err.splitlines()) == 1
    assert not marker.exists()


def test_set_overrides_are_checked_too(tmp_path, capsys) -> None:
    code, err = _train_cli(tmp_path, '{"data": "x"}', capsys, ".json", "batch_size=abc")
    assert code == 2 and "batch_size must be an integer" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_machine_is_a_config_error(tmp_path, capsys) -> None:
    code, err = _train_cli(tmp_path, "data: x\ndevice: cuda\n", capsys)
    assert code == 2 and "device 'cuda'" in err and "not available" in err
    code, err = _train_cli(tmp_path, "data: x\ndevice: bogus\n", capsys)
    assert code == 2 and "not a device name" in err


def test_config_file_reads_are_bounded(tmp_path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"data": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(DataError, match="larger than 1 MiB"):
        load_config_file(big)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_config_file(tmp_path / "bad.json")


def test_python_construction_is_checked_and_ints_become_floats() -> None:
    with pytest.raises(DataError, match="batch_size must be >= 1"):
        EstimatorTrainConfig(batch_size=-4)
    cfg = config_from_dict(EstimatorTrainConfig, {"lr": 1, "val_groups": ["a"]})
    assert isinstance(cfg.lr, float) and cfg.val_groups == ["a"]


def test_metrics_never_hold_infinity(tmp_path) -> None:
    assert finite_json({"a": float("inf"), "b": [float("nan"), 1.0]}) == {"a": None, "b": [None, 1.0]}
    # a run whose validation never scores: best_val_loss stays inf -> null in metrics.json
    clips = synthetic_clips(8)
    for c in clips[6:]:
        c.mask[:] = False
    trainer = EstimatorTrainer(_cfg(tmp_path, epochs=1), clips=clips[:6], val_clips=clips[6:])
    result = trainer.train()
    text = (tmp_path / "metrics.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["steps"] == result["steps"] > 0


def test_metric_window() -> None:
    w = MetricWindow()
    w.add(10, loss=1.0)
    w.add(30, loss=2.0, other=5.0)
    assert w.means() == {"loss": 1.5, "other": 5.0} and w.items == 40
    assert w.rate() > 0 and math.isfinite(w.rate())


@pytest.mark.parametrize("damage", ["truncate", "not_torch", "missing_weights"])
def test_resume_falls_back_to_the_previous_good_checkpoint(tmp_path, capsys, damage) -> None:
    clips = synthetic_clips()
    cfg = _cfg(tmp_path / "run", epochs=1, max_steps=4, checkpoint_every=1, keep_checkpoints=3)
    EstimatorTrainer(cfg, clips=clips).train()
    ckpt = CheckpointManager(tmp_path / "run" / "checkpoints")
    newest = ckpt.latest()
    assert newest is not None and newest.name == "step-000000004"
    state = newest / "trainer_state.pt"
    if damage == "truncate":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "not_torch":
        state.write_text("this is not a torch file\n")
    else:
        (newest / "model.safetensors").unlink()
    again = EstimatorTrainer(_cfg(tmp_path / "run", epochs=1, max_steps=4, checkpoint_every=1,
                                  keep_checkpoints=3), clips=clips)
    again.setup()
    err = capsys.readouterr().err
    assert "warning: checkpoint" in err and "step-000000004 is unreadable" in err
    assert "resumed from" in err and "step-000000003" in err
    assert again.state.step == 3
    assert (tmp_path / "run" / "checkpoints" / "unreadable-step-000000004").is_dir()
    assert ckpt.latest().name == "step-000000003"


def test_no_readable_checkpoint_is_a_clear_error(tmp_path) -> None:
    clips = synthetic_clips()
    EstimatorTrainer(_cfg(tmp_path, epochs=1, max_steps=2), clips=clips).train()
    for folder in CheckpointManager(tmp_path / "checkpoints").candidates():
        (folder / "trainer_state.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="no readable checkpoint"):
        EstimatorTrainer(_cfg(tmp_path, epochs=1, max_steps=2), clips=clips).setup()


def _config_class(name: str) -> type:
    from speechface.render.fit import MeshFitConfig
    from speechface.training import (
        EmotionTrainConfig,
        ExpressionTrainConfig,
        GANimationTrainConfig,
        LandmarkWarpTrainConfig,
    )

    for prefix, cls in (("emotion_", EmotionTrainConfig), ("expression_", ExpressionTrainConfig),
                        ("ganimation_", GANimationTrainConfig), ("landmark_gan", GANimationTrainConfig),
                        ("landmark_warp", LandmarkWarpTrainConfig), ("mesh_warp", MeshFitConfig)):
        if name.startswith(prefix):
            return cls
    return EstimatorTrainConfig


def test_every_packaged_config_passes_the_checks() -> None:
    pytest.importorskip("yaml")
    files = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        cls = _config_class(path.name)
        cfg = config_from_dict(cls, load_config_file(path), where=str(path))
        assert isinstance(cfg, cls)
