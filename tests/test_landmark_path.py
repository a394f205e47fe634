"""Paired video frames, the landmark translator and the landmark / dynamics paths of animate."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from conftest import EXAMPLES, need_shared
from speechface import LandmarkEstimator, animate
from speechface.core.errors import DataError, ModelError
from speechface.data.face_tensors import FaceTensors
from speechface.render.animate import dynamics_gain
from speechface.render.face import crop_face
from speechface.render.translators import LandmarkGenerator, Translator
from speechface.render.translators.landmark_gan import landmark_heatmaps
from speechface.spaces import get_space
from speechface.spaces.transforms import expand_dynamics, retarget_landmarks
from speechface.training.ganimation import GANimationTrainConfig, GANimationTrainer
from test_face import landmarker_model

MEAN_FACE = get_space("landmarks68").neutral_tensor()


@pytest.fixture(scope="module", autouse=True)
def _env() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHFACE_FACE_LANDMARKER", str(landmarker_model()))
        yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- the network
def test_heatmaps_peak_at_the_points_one_channel_per_part() -> None:
    lm = torch.zeros(1, 136)
    lm[0, 8], lm[0, 68 + 8] = 10.5 / 32, 20.5 / 32   # chin (jaw channel) at pixel (10, 20)
    lm[0, 60], lm[0, 68 + 60] = 3.5 / 32, 5.5 / 32    # an inner-lip point at (3, 5)
    h = landmark_heatmaps(lm, 32)
    assert h.shape == (1, 8, 32, 32)
    assert divmod(int(h[0, 0].argmax()), 32) == (20, 10) and float(h[0, 0, 20, 10]) == 1.0
    assert divmod(int(h[0, 7].argmax()), 32) == (5, 3)
    with pytest.raises(ValueError, match="136"):
        landmark_heatmaps(torch.zeros(1, 17), 32)


def test_landmark_generator_moves_with_its_landmarks_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    tr = Translator.create("landmark_gan", space="landmarks68", image_size=32, conv_dim=8,
                           repeat_num=1, sigma=1.5)
    g = tr.network
    assert isinstance(g, LandmarkGenerator) and g.condition_channels == 8
    img = torch.rand(2, 3, 32, 32, requires_grad=True) * 2 - 1
    lm = MEAN_FACE[None].repeat(2, 1)
    lm[1, 68 + 48:] += 0.05                                 # lower lip moved down
    out, att = g(img, lm)
    assert out.shape == (2, 3, 32, 32) and bool(((att > 0) & (att < 1)).all())
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    faces = np.random.default_rng(0).integers(0, 255, (1, 48, 48, 3), dtype=np.uint8)
    a, b = tr.translate(faces, lm.numpy())
    assert not np.array_equal(a, b)                          # the target points matter
    tr.save_pretrained(tmp_path / "lm")
    back = Translator.from_pretrained(tmp_path / "lm")
    assert back.network.sigma == 1.5 and back.space.name == "landmarks68"
    np.testing.assert_array_equal(back.translate(faces, lm.numpy()), tr.translate(faces, lm.numpy()))
    with pytest.raises(ValueError, match="landmarks68"):
        Translator.create("landmark_gan", space="au17")


# --------------------------------------------------------------------------- paired frames
def _frame_clips(tmp_path, n_clips: int = 2, n: int = 6, size: int = 32):
    rng = np.random.default_rng(0)
    names = []
    for c in range(n_clips):
        name = f"clip{c}"
        lm = np.tile(MEAN_FACE.numpy(), (n, 1)) + rng.normal(0, 0.01, (n, 136))
        np.savez(tmp_path / f"{name}.npz", images=rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
                 au17=rng.uniform(0, 5, (n, 17)).astype(np.float32),
                 landmarks68=lm.astype(np.float32), found=np.array([True] * (n - 1) + [False]),
                 frame_index=np.arange(n) * 3, meta_json=np.array("{}"))
        names.append({"name": name, "file": f"{name}.npz", "group": f"spk{c}"})
    (tmp_path / "manifest.json").write_text(json.dumps({"clips": names}))
    return tmp_path


def test_load_frame_clips_keeps_found_frames_and_groups(tmp_path) -> None:
    from speechface.data.prepare_frames import load_frame_clips

    clips = load_frame_clips(_frame_clips(tmp_path), "landmarks68", 32)
    assert len(clips) == 10 and clips.conds.shape == (10, 136) and clips.groups == ["spk0", "spk1"]
    one = clips.select_groups({"spk1"})
    assert len(one) == 5 and one.names == ["clip1"] and one.clip.unique().tolist() == [0]
    assert [len(ix) for ix in clips.frames_of()] == [5, 5]
    with pytest.raises(DataError, match="16 px|need 16"):
        load_frame_clips(tmp_path, "au17", 16)
    with pytest.raises(DataError, match="emotion8"):
        load_frame_clips(tmp_path, "emotion8")


def test_trainer_with_pairs_landmarks_and_partial_init(tmp_path) -> None:
    (tmp_path / "frames").mkdir()
    frames = _frame_clips(tmp_path / "frames")
    g = torch.Generator().manual_seed(0)
    n = 8
    lfw = FaceTensors((torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8),
                      MEAN_FACE[None].repeat(n, 1) + torch.rand(n, 136, generator=g) * 0.01,
                      [f"P_{i % 4}_{i:04d}.jpg" for i in range(n)])
    base = dict(image_size=32, conv_dim=8, repeat_num=1, batch_size=4, max_steps=4, n_critic=2,
                log_every=1, sample_every=2, checkpoint_every=2, progress=False)
    # an AU model to start from: everything but the first conv and the regression head fits
    au = GANimationTrainer(GANimationTrainConfig(out_dir=str(tmp_path / "au"), **base),
                           FaceTensors(lfw.images, torch.rand(n, 17) * 5, lfw.names), None)
    au.train()
    cfg = GANimationTrainConfig(out_dir=str(tmp_path / "lm"), space="landmarks68",
                                arch="landmark_gan", pairs=str(frames), pairs_val_fraction=0.5,
                                init_from=str(tmp_path / "au"), crop_margin=0.05, crop_shift=0.08,
                                **base)
    tr = GANimationTrainer(cfg, lfw, None)
    tr.setup()
    start = au.translator.network.main[3].weight          # a layer both architectures share
    assert torch.equal(tr.G.main[3].weight, start)
    first, first_au = tr.G.main[0].weight, au.translator.network.main[0].weight
    assert torch.equal(first[:, :3], first_au[:, :3]) and not first[:, 3:].any()
    result = tr.train()
    assert result["generator_steps"] == 2
    rows = (tmp_path / "lm" / "log.csv").read_text().splitlines()
    pair = [float(r.split(",")[10]) for r in rows[1:] if r.split(",")[10]]
    assert pair and all(np.isfinite(pair))
    model = Translator.from_pretrained(tmp_path / "lm" / "final")
    assert model.info["pairs"]["val_groups"] and model.info["crop_shift"] == 0.08
    assert model.info["pairs"]["clips"] == 1                 # one speaker group held out
    with pytest.raises(DataError, match="model.safetensors"):
        GANimationTrainer(GANimationTrainConfig(out_dir=str(tmp_path / "x"),
                                                init_from=str(tmp_path), **base), lfw, None).setup()


def test_prepare_frames_on_a_real_clip(tmp_path) -> None:
    from speechface.data.prepare_frames import load_frame_clips, prepare_frames

    clip = need_shared("data", "av_clips", "grid_bbaf2n.mpg")
    info = prepare_frames([clip], tmp_path, size=32, stride=5, max_frames=4,
                          model_path=landmarker_model(), progress=False)
    assert info["n_written"] == 1 and info["n_frames"] == 4
    with np.load(next(tmp_path.glob("*.npz"))) as z:
        assert z["images"].shape == (4, 32, 32, 3) and z["frame_index"].tolist() == [0, 5, 10, 15]
        assert z["found"].all()
        lm = z["landmarks68"]
    assert 0.3 < lm[:, :68].mean() < 0.7 and 0.3 < lm[:, 68:].mean() < 0.75  # crop units
    again = prepare_frames([clip], tmp_path, size=32, stride=5, max_frames=4,
                           model_path=landmarker_model(), progress=False)
    assert again["n_kept"] == 1 and again["n_written"] == 0
    assert len(load_frame_clips(tmp_path, "au17", 32)) == 4


def test_prepare_faces_writes_image_normalised_landmarks(tmp_path) -> None:
    from speechface.data.faces import FaceFolder
    from speechface.data.prepare_faces import prepare_faces

    root = need_shared("data", "ganimation_sample", "imgs")
    info = prepare_faces(root, tmp_path / "l.csv", model_path=landmarker_model(), landmarks=True,
                         progress=False)
    assert info["n_labelled"] == 4 and "x_67" in info["columns"] and "AU45_r" in info["columns"]
    ds = FaceFolder(root, au_csv=tmp_path / "l.csv", space="landmarks68")
    assert ds.aus.shape == (4, 136) and -0.3 < ds.aus.min() and ds.aus.max() < 1.3
    centre = np.stack([ds.aus[:, :68].mean(1), ds.aus[:, 68:].mean(1)], 1)  # image units
    assert ((centre > 0.3) & (centre < 0.7)).all()


# --------------------------------------------------------------------------- animate
def test_crop_shift_moves_the_square_up() -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    a = crop_face(img, (80, 80, 120, 120), margin=0.5)
    b = crop_face(img, (80, 80, 120, 120), margin=0.5, shift=0.1)
    assert a.side == b.side == 80 and a.y0 - b.y0 == 8 and a.x0 == b.x0
    with pytest.raises(ValueError, match="shift"):
        crop_face(img, (80, 80, 120, 120), shift=0.7)


def test_per_dimension_dynamics_and_the_recorded_gain() -> None:
    v = np.array([[1.0] * 17, [2.0] * 17], dtype=np.float32)
    gain = np.ones(17)
    gain[0] = 3.0
    out = expand_dynamics(v, "au17", gain)
    np.testing.assert_allclose(out[:, 0], [0.0, 3.0])
    np.testing.assert_allclose(out[:, 1:], v[:, 1:])
    with pytest.raises(ValueError, match="17"):
        expand_dynamics(v, "au17", np.ones(5))

    class Est:
        info = {"dynamics_gain": [2.0] * 17}
        space = get_space("au17")

    assert dynamics_gain(Est()).tolist() == [2.0] * 17
    Est.info = {"dynamics_gain": [2.0] * 3}
    with pytest.raises(ModelError, match="dynamics_gain"):
        dynamics_gain(Est())
    Est.info = {}
    assert dynamics_gain(Est()) is None


def test_fit_dynamics_gain_restores_the_target_spread() -> None:
    from speechface import AUEstimator
    from speechface.data.clips import TrainClip
    from speechface.evaluation.calibration import fit_dynamics_gain

    torch.manual_seed(0)
    est = AUEstimator.create("mlp")
    audio = torch.randn(16000 * 2) * 0.1
    feats = est.featurize(audio)
    t = feats.shape[-1]
    targets = torch.zeros(t, 17)
    targets[:, 14] = torch.linspace(0, 4, t)                # AU25 moves a lot, others not
    clip = TrainClip("c", "g", feats.T, targets, torch.ones(t, dtype=torch.bool), audio)
    fit = fit_dynamics_gain(est, [clip], high=50.0)
    assert fit["gain"][0] == 1.0 and fit["gain"][14] > 1.0 and fit["n_clips"] == 1
    with pytest.raises(DataError):
        fit_dynamics_gain(est, [clip], min_frames=10_000)


def test_retarget_moves_the_photos_own_points() -> None:
    own = MEAN_FACE.numpy() * 0.5 + 0.25                     # a face filling half the crop
    pred = np.tile(MEAN_FACE.numpy(), (3, 1))
    pred[1, 68 + 8] += 0.1                                   # chin drops by 10 % of a face
    out = retarget_landmarks(pred, own)
    h = own[68:].max() - own[68:].min()
    assert out.shape == (3, 136)
    assert out[1, 68 + 8] - out[0, 68 + 8] == pytest.approx(0.1 * h, rel=1e-5)
    np.testing.assert_allclose(out.mean(0), own, atol=1e-6)  # the photo's own shape on average


def test_animate_with_a_landmark_translator(tmp_path) -> None:
    from speechface.audio import load_audio

    torch.manual_seed(0)
    tr = Translator.create("landmark_gan", space="landmarks68", image_size=32, conv_dim=8,
                           repeat_num=1)
    tr.info = {"crop_margin": 0.05, "crop_shift": 0.08}
    est = LandmarkEstimator.create("cnn")
    wave = load_audio(EXAMPLES / "speech.wav")[:16000].numpy()
    anim = animate(wave, EXAMPLES / "astronaut.jpg", est, tr, sample_rate=16000, progress=False)
    assert len(anim) == 25 and anim.info["space"] == "landmarks68" and anim.info["margin"] == 0.05
    d = anim.driving
    assert d.shape == (25, 136) and -0.3 < d.min() and d.max() < 1.3   # crop coordinates
    assert 0.3 < d[:, :68].mean() < 0.7 and 0.3 < d[:, 68:].mean() < 0.75
    with pytest.raises(ModelError, match="landmarks68 estimator"):
        from speechface import AUEstimator

        animate(wave, EXAMPLES / "astronaut.jpg", AUEstimator.create("cnn"), tr,
                sample_rate=16000, progress=False)
    with pytest.raises(ValueError, match="space"):
        animate(wave, EXAMPLES / "astronaut.jpg", est, tr, sample_rate=16000, space="au99",
                progress=False)
    with pytest.raises(ValueError, match="lipsync"):
        animate(wave, EXAMPLES / "astronaut.jpg", est, tr, sample_rate=16000, lipsync=True,
                progress=False)


def test_evaluate_pairs_and_figure(tmp_path) -> None:
    from speechface.data.prepare_frames import load_frame_clips
    from speechface.evaluation.translators import evaluate_pairs, pairs_figure

    (tmp_path / "f").mkdir()
    clips = load_frame_clips(_frame_clips(tmp_path / "f"), "landmarks68", 32)
    torch.manual_seed(0)
    tr = Translator.create("landmark_gan", space="landmarks68", image_size=32, conv_dim=8,
                           repeat_num=1)
    res = evaluate_pairs(tr, clips, per_clip=3)
    assert res["n_clips"] == 2 and res["n_pairs"] == 6 and len(res["per_clip_l1"]) == 2
    assert res["l1_255"] > 0 and res["mse_255_unchanged"] > 0
    path = pairs_figure(tr, clips, tmp_path / "g.png", n_clips=2, per_clip=3)
    from PIL import Image

    with Image.open(path) as im:
        assert im.width == 4 * 96 and im.height == 2 * 2 * 96 + 16
