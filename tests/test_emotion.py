"""Speech -> emotion8 students: the RAVDESS route, distillation targets, the packaged model."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from conftest import need_shared
from speechface.data.clips import load_ravdess_clips
from speechface.data.emotion_targets import add_emotion_targets
from speechface.spaces import EMOTION8
from speechface.training.emotion import EmotionTrainConfig, UtteranceEmotionTrainer, utterance_loss

PACKAGED = "dcnn.emotion8-ravdess"
# two clips per actor (happy, sad, angry ...): a handful of real utterances
FILES = {1: ["03-01-03-02-02-01-01", "03-01-04-01-01-01-01", "03-01-05-02-01-02-01"],
         2: ["03-01-03-01-01-01-02", "03-01-06-01-02-02-02"],
         3: ["03-01-02-01-01-01-03", "03-01-07-02-02-01-03"]}


@pytest.fixture
def tiny_ravdess(tmp_path):
    """A RAVDESS-shaped folder of links to a few real clips of actors 1-3."""
    root = need_shared("data", "ravdess")
    out = tmp_path / "ravdess"
    for actor, names in FILES.items():
        (out / f"Actor_{actor:02d}").mkdir(parents=True)
        for n in names:
            src = root / f"Actor_{actor:02d}" / f"{n}.flac"
            if not src.is_file():
                pytest.skip(f"RAVDESS clip {src} not found")
            os.symlink(src, out / f"Actor_{actor:02d}" / f"{n}.flac")
    return out


def test_utterance_loss_pools_frame_probabilities() -> None:
    raw = torch.randn(2, 6, 8, requires_grad=True)
    y = torch.zeros(2, 6, 8)
    y[0, :, 1] = 1
    y[1, :, 4] = 1
    m = torch.ones(2, 6, dtype=torch.bool)
    m[1, 4:] = False  # padding must not count
    loss = utterance_loss(raw, y, m)
    p0 = raw[0].softmax(-1).mean(0)
    p1 = raw[1, :4].softmax(-1).mean(0)
    expected = -(p0[1].log() + p1[4].log()) / 2
    assert torch.allclose(loss, expected, atol=1e-5)
    loss.backward()
    assert raw.grad is not None and float(raw.grad[1, 4:].abs().sum()) == 0.0
    logits = utterance_loss(raw, y, m, pool="logits")
    assert torch.isfinite(logits)
    with pytest.raises(ValueError):
        utterance_loss(raw, y, m, pool="max")


def test_ravdess_clips_have_one_hot_labels_without_contempt(tiny_ravdess) -> None:
    clips = load_ravdess_clips(tiny_ravdess, actors=[1])
    assert [c.group for c in clips] == ["Actor_01"] * 3
    for c in clips:
        assert c.features.shape[1] == 80 and c.targets.shape == (len(c.features), 8)
        assert torch.all(c.targets.sum(1) == 1) and float(c.targets[:, 7].sum()) == 0.0
        assert bool(c.mask.all())
    assert int(clips[0].targets[0].argmax()) == EMOTION8.index("happiness")


def test_ravdess_clips_with_augmented_copies(tiny_ravdess) -> None:
    plain = load_ravdess_clips(tiny_ravdess, actors=[1])
    aug = load_ravdess_clips(tiny_ravdess, actors=[1], augment_copies=2, seed=3)
    assert [c.name for c in aug[:3]] == [plain[0].name, plain[0].name + "__aug0",
                                        plain[0].name + "__aug1"]
    assert len(aug) == 9 and {c.group for c in aug} == {"Actor_01"}
    assert torch.equal(aug[0].features, plain[0].features)       # the original is unchanged
    for c in aug[1:3]:   # a transformed copy: other features, same label on every frame
        assert not torch.equal(c.features[:10], plain[0].features[:10])
        assert int(c.targets.argmax(1).unique().item()) == EMOTION8.index("happiness")
    again = load_ravdess_clips(tiny_ravdess, actors=[1], augment_copies=2, seed=3)
    assert torch.equal(again[1].features, aug[1].features)       # seeded
    with pytest.raises(ValueError, match="augment_copies"):
        load_ravdess_clips(tiny_ravdess, actors=[1], augment_copies=-1)


def test_supervised_route_trains_and_reports_via_cli(tiny_ravdess, tmp_path) -> None:
    import json

    import yaml

    from speechface.cli import main

    cfg = {"route": "ravdess", "ravdess_root": str(tiny_ravdess), "val_actors": [2],
           "test_actors": [3], "arch": "cnn", "model_args": {"channels": [16, 8],
                                                            "dilations": [1, 1], "proj": 16},
           "max_steps": 3, "epochs": 2, "batch_size": 2, "progress": False,
           "freq_mask": 8, "time_mask": 10, "name": "cnn.emotion8-test",
           "augment_copies": 2, "augment_speed": 0.05, "augment_gain_db": 20}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "emotion", "--config", str(path), "--set", f"out_dir={out}"]) == 0
    result = json.loads((out / "result.json").read_text())
    # 3 training utterances and 2 transformed copies of each; validation stays unaugmented
    assert result["steps"] == 3 and result["train_clips"] == 9 and result["val_clips"] == 2
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["n_clips"] == 2 and 0.0 <= test["accuracy_7"] <= 1.0
    assert np.asarray(test["confusion_7"]).shape == (7, 7)
    assert (out / "confusion_test.png").stat().st_size > 1000
    card = (out / "best" / "README.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "speechface train emotion --config" in card
    assert ("2 transformed copies of every training utterance (speed +-0.05, EQ / telephone "
            "band, reverberation, noise, level +-20 dB)") in card
    cfg_json = json.loads((out / "best" / "config.json").read_text())
    assert cfg_json["space"] == "emotion8" and cfg_json["info"]["val_groups"] == ["Actor_02"]


def test_trainer_validation_reports_accuracy(tiny_ravdess, tmp_path) -> None:
    train = load_ravdess_clips(tiny_ravdess, actors=[1, 3])
    val = load_ravdess_clips(tiny_ravdess, actors=[2])
    cfg = EmotionTrainConfig(out_dir=str(tmp_path / "t"), arch="cnn", max_steps=1, epochs=1,
                             model_args={"channels": [8], "dilations": [1], "proj": 8},
                             batch_size=4, progress=False)
    trainer = UtteranceEmotionTrainer(cfg, clips=train, val_clips=val)
    trainer.setup()
    val_metrics = trainer.validate()
    assert set(val_metrics) == {"loss", "mae", "accuracy"}
    assert val_metrics["loss"] > 0 and 0 <= val_metrics["accuracy"] <= 1


def test_distillation_targets_on_a_real_clip(tmp_path) -> None:
    pytest.importorskip("mediapipe")
    clip = need_shared("data", "av_clips", "grid_s1", "bbaf3s.mp4")
    model = need_shared("models", "face_landmarker.task")
    from speechface.data.clips import load_training_clips
    from speechface.data.prepare import prepare_av
    from speechface.data.shards import read_clip
    from speechface.teachers.expression import ExpressionRecognizer

    try:  # the packaged FER+ teacher when it is there; else random weights test the plumbing
        fer = ExpressionRecognizer.from_pretrained()
    except Exception:
        fer = ExpressionRecognizer.create("fer_cnn", channels=[8, 16], depths=[1, 1])
    shards = tmp_path / "shards"
    prepare_av([clip], shards, model_path=model, max_seconds=1.0, progress=False, strict=True)
    out = tmp_path / "emotion"
    recs = add_emotion_targets(shards, fer, output=out, landmarker=model, progress=False,
                               strict=True)
    assert len(recs) == 1 and "emotion8" in recs[0]["targets"]
    arrays, rec = read_clip(out, recs[0]["name"])
    probs, mask = arrays["targets_emotion8"], arrays["mask"]
    assert probs.shape == (rec["n_frames"], 8) and mask.mean() > 0.8
    assert np.allclose(probs[mask].sum(1), 1.0, atol=1e-4)
    assert rec["expression_teacher"] == fer.name
    clips = load_training_clips(out, "emotion8", "logmel")  # what the distill route reads
    assert clips[0].targets.shape[1] == 8
    again = add_emotion_targets(shards, fer, output=out, landmarker=model, progress=False)
    assert again[0]["written_at"] == rec["written_at"]  # resumed: not recomputed


def _packaged():
    from speechface.pretrained import packaged_dir

    if packaged_dir(PACKAGED) is None:
        pytest.skip(f"packaged model {PACKAGED} not installed")
    return PACKAGED


def test_packaged_model_predicts_per_frame_probabilities(ravdess_clip, tmp_path) -> None:
    from speechface import EmotionEstimator

    est = EmotionEstimator.from_pretrained(_packaged())
    assert est.pretrained and est.info["licence"] == "CC BY-NC-SA 4.0"
    r = est.predict(ravdess_clip)
    assert r.values.shape[1] == 8 and len(r) > 50
    assert np.allclose(r.values.sum(1), 1.0, atol=1e-5)
    assert r.labels == EMOTION8.labels
    summary = r.mean()
    assert set(summary) == set(EMOTION8.labels) and abs(sum(summary.values()) - 1) < 1e-4
    assert r.top() in EMOTION8.labels
    r.to_csv(tmp_path / "emo.csv")
    with open(tmp_path / "emo.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frame", "timestamp", *EMOTION8.labels] and len(rows) == len(r) + 1


def test_predict_cli_writes_emotion_csv(ravdess_clip, tmp_path) -> None:
    from speechface.cli import main

    out = tmp_path / "e.csv"
    assert main(["predict", str(ravdess_clip), "-o", str(out), "--space", "emotion8",
                 "--model", _packaged()]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[2:] == list(EMOTION8.labels)
