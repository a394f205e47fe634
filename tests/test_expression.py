"""Expression recogniser: network, wrapper round trip, image input, FER+ trainer + resume, prototypes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import need_shared
from speechface.core.errors import DataError, ImageError, ModelError
from speechface.core.registry import EXPRESSION
from speechface.spaces import AU17, EMOTION8, EMOTION_AU_PROTOTYPES, emotion_to_au
from speechface.teachers.expression import ExpressionRecognizer, FerCNN, load_face_images

TINY = {"channels": [8, 16], "depths": [1, 2], "residual": True}


# ------------------------------------------------------------------------------ network


@pytest.mark.parametrize("kwargs", [{}, {"residual": True, "input_size": 64},
                                    {"channels": [16, 32, 64, 128], "depths": [1, 2, 2, 1]}])
def test_network_shapes_and_gradients(kwargs: dict) -> None:
    assert "fer_cnn" in EXPRESSION.list()
    net = FerCNN(**kwargs)
    s = net.input_size
    x = torch.randn(3, 1, s, s)
    y = net(x)
    assert y.shape == (3, 8) and torch.isfinite(y).all()
    torch.nn.functional.cross_entropy(y, torch.tensor([0, 1, 2])).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert net.hparams["input_size"] == s  # recorded for config.json


def test_default_network_size_is_compact() -> None:
    assert 0.3e6 < FerCNN().num_parameters() < 0.7e6
    with pytest.raises(ValueError, match="one depth per stage"):
        FerCNN(channels=[8, 16], depths=[1])


def test_vgg13_paper_layout_and_compact_variant() -> None:
    from speechface.teachers.expression import VGG13

    assert "vgg13" in EXPRESSION.list()
    net = VGG13()  # the FER+ paper's layout: 64x64, 10 convolutions, FC 1024-1024-8
    assert net.input_size == 64 and 8.7e6 < net.num_parameters() < 8.8e6
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 10
    x = torch.randn(3, 1, 64, 64)
    y = net(x)
    assert y.shape == (3, 8) and torch.isfinite(y).all()
    torch.nn.functional.cross_entropy(y, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    small = VGG13(input_size=32, channels=[8, 16], depths=[1, 1], fc=[16], head="avg",
                  flip_average=True).eval()
    z = torch.randn(2, 1, 32, 32)
    with torch.no_grad():  # eval-mode flip averaging: a mirrored input gives the same logits
        torch.testing.assert_close(small(z), small(z.flip(-1)), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        VGG13(input_size=48, channels=[8, 8, 8, 8, 8], depths=[1] * 5)
    with pytest.raises(ValueError, match="head"):
        VGG13(head="max")


# ------------------------------------------------------------------------------ wrapper


def test_save_load_round_trip_identical(tmp_path: Path) -> None:
    fer = ExpressionRecognizer.create("fer_cnn", name="tiny", **TINY)
    fer.set_normalization(0.52, 0.24)
    with torch.no_grad():  # non-trivial BatchNorm statistics must survive the round trip
        for m in fer.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    imgs = np.random.default_rng(0).integers(0, 256, (5, 60, 60, 3), dtype=np.uint8)
    p1 = fer.predict(imgs)
    fer.save_pretrained(tmp_path / "m")
    again = ExpressionRecognizer.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(imgs), p1)
    assert again.name == "tiny" and again.network.hparams == fer.network.hparams
    assert float(again.pixel_mean) == pytest.approx(0.52)
    assert p1.shape == (5, 8) and np.allclose(p1.sum(1), 1, atol=1e-5)


def test_source_size_resizes_through_the_training_resolution(tmp_path: Path) -> None:
    from speechface.teachers.expression import VGG13  # noqa: F401  (registers vgg13)

    fer = ExpressionRecognizer.create("vgg13", input_size=32, channels=[8, 16], depths=[1, 1],
                                      fc=[16], head="avg")
    big = np.random.default_rng(2).integers(0, 256, (96, 96), dtype=np.uint8)
    small = np.asarray(Image.fromarray(big).resize((24, 24), Image.Resampling.BILINEAR))
    direct = fer.predict(big)
    fer.source_size = 24  # a 96 px face now passes through 24 px, exactly like a 24 px face
    np.testing.assert_array_equal(fer.predict(big), fer.predict(small))
    assert not np.array_equal(fer.predict(big), direct)
    fer.save_pretrained(tmp_path / "m")
    again = ExpressionRecognizer.from_pretrained(tmp_path / "m")
    assert again.source_size == 24
    np.testing.assert_array_equal(again.predict(big), fer.predict(big))
    with pytest.raises(ModelError, match="source_size"):
        ExpressionRecognizer(fer.network, source_size=3)


def test_from_pretrained_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="architecture"):
        ExpressionRecognizer.from_pretrained("fer_cnn")
    with pytest.raises(ModelError):
        ExpressionRecognizer.from_pretrained(tmp_path / "missing-model")
    from speechface import AUEstimator

    AUEstimator.create("mlp").save_pretrained(tmp_path / "speech")
    with pytest.raises(ModelError, match="not a expression|estimator"):
        ExpressionRecognizer.from_pretrained(tmp_path / "speech")


def test_image_inputs_are_equivalent(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    a = load_face_images(str(tmp_path / "a.png"), 48)
    b = load_face_images(Image.fromarray(rgb), 48)
    c = load_face_images(rgb, 48)
    d = load_face_images([grey], 48)
    e = load_face_images(torch.from_numpy(rgb.astype(np.float32) / 255), 48)
    for other in (b, c, d):
        np.testing.assert_array_equal(a, other)
    assert np.abs(a.astype(int) - e.astype(int)).max() <= 1
    assert load_face_images(np.zeros((3, 40, 30), np.uint8), 48).shape == (3, 48, 48)  # batch
    assert load_face_images(np.zeros((2, 40, 30, 3), np.uint8), 32).shape == (2, 32, 32)


@pytest.mark.parametrize("bad,match", [
    (None, "expected an image"),
    (42, "expected an image"),
    ([], "no images"),
    (np.zeros(10, np.uint8), r"\(H, W\)"),
    (np.zeros((0, 10), np.uint8), "empty"),
    (np.zeros((1, 2, 3, 4, 3), np.uint8), r"\(H, W\)"),
    (np.full((8, 8), np.nan, np.float32), "NaN"),
    (np.full((8, 8), 255.0), r"\[0, 1\]"),
    (np.zeros((8, 8), np.int32), "dtype"),
    ("no/such/face.jpg", "not found"),
    ([np.zeros((8, 8), np.uint8), "oops"], "image 1"),
])
def test_bad_image_input(bad: object, match: str) -> None:
    fer = ExpressionRecognizer.create("fer_cnn", **TINY)
    with pytest.raises(ImageError, match=match):
        fer.predict(bad)


def test_unreadable_image_file(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_text("not an image")
    with pytest.raises(ImageError, match="cannot be read"):
        load_face_images(tmp_path / "x.jpg", 48)


def test_packaged_model_on_real_faces() -> None:
    folder = need_shared("data", "ganimation_sample", "imgs")
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 4
    try:
        fer = ExpressionRecognizer.from_pretrained()
    except ModelError as e:  # pragma: no cover - the packaged model ships with the library
        pytest.fail(f"packaged expression model missing: {e}")
    assert fer.pretrained
    probs = fer.predict(files)
    assert probs.shape == (4, 8) and probs.dtype == np.float32
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]  # 128x128 RGB
    np.testing.assert_allclose(fer.predict(arrays), probs, atol=1e-6)
    assert all(lab in EMOTION8.labels for lab in fer.predict_labels(files))


# ------------------------------------------------------------------------------ trainer


def _ferplus():
    from speechface.data.ferplus import load_ferplus

    npz = need_shared("data", "ferplus", "ferplus_trainval.npz")
    return (load_ferplus(npz, "train", limit=320, progress=False),
            load_ferplus(npz, "valid", limit=160, progress=False))


def test_trainer_runs_and_resumes_exactly(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from speechface.training.expression import ExpressionTrainConfig, ExpressionTrainer

    train, val = _ferplus()
    cfg = ExpressionTrainConfig(out_dir=str(tmp_path / "a"), model_args=TINY, batch_size=64,
                                max_steps=3, checkpoint_every=1, keep_checkpoints=5,
                                progress=False, seed=3)
    res = ExpressionTrainer(cfg, train, val).train()
    assert res["steps"] == 3 and res["epochs"] == 1 and 0 <= res["val_acc"] <= 1
    out = tmp_path / "a"
    assert (out / "best" / "model.safetensors").is_file() and (out / "log.csv").is_file()
    best = ExpressionRecognizer.from_pretrained(out / "best")
    assert best.pretrained and best.predict(val.images[:2]).shape == (2, 8)

    # simulate a kill after step 2: the pointer names step 2; a rerun must reach the same weights
    shutil.copytree(out, tmp_path / "b")
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step-000000002\n")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-000000003")
    cfg_b = ExpressionTrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "b")})
    trainer = ExpressionTrainer(cfg_b, train, val)
    trainer.setup()
    assert trainer.state.step == 2 and trainer.state.batch_in_epoch == 2
    assert trainer.train()["steps"] == 3
    wa = load_file(str(out / "checkpoints" / "step-000000003" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "checkpoints" / "step-000000003" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


def test_trainer_holdout_selection_keeps_valid_for_the_end(tmp_path: Path) -> None:
    from speechface.training.expression import ExpressionTrainConfig, ExpressionTrainer

    train, val = _ferplus()
    cfg = ExpressionTrainConfig(out_dir=str(tmp_path / "h"), arch="vgg13",
                                model_args={"input_size": 32, "channels": [8, 16],
                                            "depths": [1, 1], "fc": [16]},
                                batch_size=64, epochs=2, holdout=0.25, brightness=0.2,
                                contrast=0.3, erase_prob=0.5, progress=False, seed=1)
    trainer = ExpressionTrainer(cfg, train, val)
    res = trainer.train()
    assert res["select_on"] == "holdout" and res["holdout_images"] == 80
    assert len(trainer.train_data) == 240 and len(trainer.select_data) == 80
    train_names = set(trainer.train_data.names)
    assert not train_names & set(trainer.select_data.names)  # disjoint parts of train
    assert 0 <= res["valid_acc"] <= 1 and res["valid_n"] == int(val.majority(drop_unknown=True)[1].sum())
    assert (tmp_path / "h" / "best" / "valid_metrics.json").is_file()
    best = ExpressionRecognizer.from_pretrained(tmp_path / "h" / "best")
    assert best.network.arch == "vgg13" and best.info["holdout_images"] == 80
    with pytest.raises(DataError, match="holdout"):
        ExpressionTrainer(ExpressionTrainConfig(out_dir=str(tmp_path / "x"), holdout=1.5,
                                                progress=False), train, val).setup()


def test_photometric_jitter_and_erasing() -> None:
    from speechface.data.image_augment import erase_batch, jitter_batch

    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(jitter_batch(x, brightness=0.0, contrast=0.0), x)
    y = jitter_batch(x, torch.Generator().manual_seed(0), brightness=0.0, contrast=0.5)
    torch.testing.assert_close(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5, rtol=0)
    assert not torch.allclose(y, x)
    ones = torch.ones(64, 1, 16, 16)
    none = erase_batch(ones, torch.Generator().manual_seed(0), prob=0.0)
    torch.testing.assert_close(none, ones)
    some = erase_batch(ones, torch.Generator().manual_seed(0), prob=1.0, area=(0.1, 0.1))
    frac = (some == 0).float().mean((1, 2, 3))
    assert bool((frac > 0.03).all()) and bool((frac < 0.2).all())


def test_augmentation_identity_and_flip() -> None:
    from speechface.data.image_augment import augment_batch

    x = torch.rand(2, 1, 48, 48)
    same = augment_batch(x, flip=False, rotate_deg=0, scale=(1, 1), shift_px=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    flipped = augment_batch(x, g, rotate_deg=0, scale=(1, 1), shift_px=0)
    for i in range(2):  # each image is either unchanged or mirrored
        assert (torch.allclose(flipped[i], x[i], atol=1e-5)
                or torch.allclose(flipped[i], x[i].flip(-1), atol=1e-5))


def test_cli_component_registered() -> None:
    import speechface.training.expression  # noqa: F401  (registers the component)
    from speechface.cli import main

    assert main(["train", "expression", "--set", "no_such_option=1"]) == 2


# ------------------------------------------------------------------------------ prototypes


def test_emotion_to_au_examples() -> None:
    eye = np.eye(8, dtype=np.float32)
    au = emotion_to_au(eye)
    assert au.shape == (8, 17)
    assert not au[0].any()  # neutral: no AU
    happy = {AU17.labels[i] for i in np.flatnonzero(au[EMOTION8.index("happiness")])}
    assert happy == {"AU06", "AU12"}
    disgust = {AU17.labels[i] for i in np.flatnonzero(au[EMOTION8.index("disgust")])}
    assert disgust == {"AU09", "AU10", "AU15"}  # AU16 -> AU10
    assert au[EMOTION8.index("contempt"), AU17.index("AU14")] == 1.5
    mix = emotion_to_au([0.5, 0.5, 0, 0, 0, 0, 0, 0])
    assert mix[AU17.index("AU12")] == pytest.approx(1.5)
    t = emotion_to_au(torch.softmax(torch.randn(2, 5, 8), -1))
    assert isinstance(t, torch.Tensor) and t.shape == (2, 5, 17) and (t >= 0).all() and (t <= 5).all()
    assert emotion_to_au(np.full(8, 10.0)).max() == 5.0  # clipped
    assert set(EMOTION_AU_PROTOTYPES) == set(EMOTION8.labels)
    with pytest.raises(ValueError, match="8"):
        emotion_to_au(np.zeros((3, 7)))
