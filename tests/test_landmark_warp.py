"""The landmark-driven warping translator (landmark_warp) and its reconstruction trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import EXAMPLES
from speechface import animate
from speechface.audio import load_audio
from speechface.core.errors import DataError, ModelError
from speechface.data.face_tensors import FaceTensors
from speechface.render.translators import LandmarkWarpGenerator, Translator
from speechface.render.translators.landmark_warp import identity_grid, warp_image
from speechface.spaces import get_space
from speechface.training.warp import (
    LandmarkWarpTrainConfig,
    LandmarkWarpTrainer,
    random_deformation,
)
from test_landmark_path import _frame_clips

MEAN_FACE = get_space("landmarks68").neutral_tensor()


def _shifting(tr: Translator, dx: float) -> None:
    """Make the network's flow a constant ``dx`` (normalised units) with attention ~1."""
    head = tr.network.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[0] = float(np.arctanh(dx / tr.network.max_flow))
        head.bias[2] = 30.0


def test_warp_image_identity_and_a_one_pixel_shift() -> None:
    img = torch.arange(64.0).view(1, 1, 8, 8)
    assert torch.allclose(warp_image(img, torch.zeros(1, 2, 8, 8)), img)
    flow = torch.zeros(1, 2, 2, 2)
    flow[:, 0] = 2 / 8                                  # one pixel of 8 to the right
    out = warp_image(img, flow)                         # flow is resized to the image
    assert torch.allclose(out[..., :7], img[..., 1:])   # each pixel shows its right neighbour
    g = identity_grid(1, 8, 8)
    assert g.shape == (1, 8, 8, 2) and float(g[0, 0, 0, 0]) == pytest.approx(-7 / 8)


def test_untrained_network_returns_its_input_and_gradients_flow() -> None:
    torch.manual_seed(0)
    g = LandmarkWarpGenerator(image_size=32, conv_dim=8, depth=2)
    img = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    out, att = g(img, MEAN_FACE[None].repeat(2, 1))
    assert out.shape == (2, 3, 32, 32) and bool(((att > 0.9) & (att < 1)).all())
    assert (out - img).abs().mean() < 0.1
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    colour, a, flow = g.forward_warp(img, MEAN_FACE[None].repeat(2, 1))
    assert flow.shape == (2, 2, 32, 32) and float(flow.detach().abs().max()) == 0.0
    with pytest.raises(ValueError, match="landmarks68"):
        LandmarkWarpGenerator(space="au17")
    with pytest.raises(ValueError, match="divisible"):
        LandmarkWarpGenerator(image_size=36, depth=3)


def test_translate_warps_the_full_resolution_photo(tmp_path) -> None:
    tr = Translator.create("landmark_warp", space="landmarks68", image_size=32, conv_dim=8,
                           depth=2, max_flow=0.5)
    _shifting(tr, 0.25)                                 # an eighth of the side to the right
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    out = tr.translate(face, MEAN_FACE.numpy())
    # 12 full-resolution pixels: the detail of the 96 px photo survives (no 32 px round trip)
    diff = np.abs(out[:, :-12].astype(int) - face[:, 12:].astype(int))
    assert diff.mean() < 1.0
    tr.save_pretrained(tmp_path / "w")
    back = Translator.from_pretrained(tmp_path / "w")
    assert back.network.max_flow == 0.5 and back.network.arch == "landmark_warp"
    np.testing.assert_array_equal(back.translate(face, MEAN_FACE.numpy()), out)


def test_random_deformation_moves_the_landmarks_with_the_image() -> None:
    lm = MEAN_FACE[None].repeat(4, 1) * 0.6 + 0.2
    gen = torch.Generator().manual_seed(0)
    grid, moved = random_deformation(lm, 64, generator=gen)
    assert grid.shape == (4, 64, 64, 2) and moved.shape == (4, 136)
    assert float((moved - lm).abs().mean()) > 0.005          # it does move them
    # the deformed image shows original point q at the moved point p: grid(p) = q
    p = torch.stack([moved[:, :68], moved[:, 68:]], -1) * 2 - 1
    at_p = F.grid_sample(grid.permute(0, 3, 1, 2), p[:, None], align_corners=False)
    q = torch.stack([lm[:, :68], lm[:, 68:]], -1) * 2 - 1
    assert float((at_p[:, :, 0].transpose(1, 2) - q).abs().max()) < 0.01
    still, same = random_deformation(lm, 16, scale=0, rotate=0, shift=0, elastic=0, jaw=0)
    assert torch.allclose(same, lm, atol=1e-5)
    assert torch.allclose(still, identity_grid(4, 16, 16), atol=1e-6)


def test_trainer_learns_deformations_resumes_and_saves(tmp_path) -> None:
    torch.manual_seed(0)
    (tmp_path / "frames").mkdir()
    frames = _frame_clips(tmp_path / "frames")
    n = 8
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.stack([(xx / 31), (yy / 31), 0.5 + 0.5 * torch.sin(xx / 3)])  # (3, 32, 32)
    faces = FaceTensors((smooth[None].repeat(n, 1, 1, 1) * 255).to(torch.uint8),
                        MEAN_FACE[None].repeat(n, 1), [f"P_{i % 4}_{i:04d}.jpg" for i in range(n)])
    cfg = LandmarkWarpTrainConfig(pairs=str(frames), pairs_val_groups=["spk1"],
                                  out_dir=str(tmp_path / "run"), image_size=32,
                                  model_args={"conv_dim": 8, "depth": 2}, batch_size=4,
                                  pair_batch=2, max_steps=30, lr=2e-3, log_every=5,
                                  sample_every=15, checkpoint_every=10, crop_margin=0.05,
                                  progress=False)
    trainer = LandmarkWarpTrainer(cfg, faces)
    trainer.setup()
    before = trainer.validate(64)
    result = trainer.train()
    assert result["steps"] == 30 and np.isfinite(result["val_pairs_l1_255"])
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(",")))
    last = dict(zip(header, rows[-1].split(",")))
    assert float(last["l1_faces"]) < float(first["l1_faces"])      # it learns to warp
    assert (tmp_path / "run" / "samples" / "step-000000015.png").is_file()
    model = Translator.from_pretrained(tmp_path / "run" / "final")
    assert model.pretrained and model.info["crop_margin"] == 0.05
    assert model.info["pairs"] == {"frames": 5, "clips": 1, "val_groups": ["spk1"]}
    assert "val_pairs_l1_255" in before
    # a rerun with the same folder resumes at the last checkpoint and stops at once
    again = LandmarkWarpTrainer(cfg, faces)
    again.setup()
    assert again.state.step == 30
    torch.testing.assert_close(again.G.head.weight, trainer.G.head.weight)


def test_trainer_needs_data(tmp_path) -> None:
    with pytest.raises(DataError, match="both"):
        LandmarkWarpTrainConfig(images="x")
    with pytest.raises(DataError, match="photos with landmarks"):
        LandmarkWarpTrainer(LandmarkWarpTrainConfig(out_dir=str(tmp_path))).setup()
    bad = FaceTensors(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, 17),
                      ["a_0001.jpg", "b_0001.jpg"])
    with pytest.raises(DataError, match="136"):
        LandmarkWarpTrainer(LandmarkWarpTrainConfig(out_dir=str(tmp_path), image_size=32),
                            bad).setup()


# --------------------------------------------------------------------------- animate
def test_packaged_landmark_translator_follows_points_on_a_real_photo() -> None:
    from speechface.pretrained import DEFAULT_MODELS
    from speechface.render.face import crop_face, detect_faces, load_image

    tr = Translator.from_pretrained(DEFAULT_MODELS["translator_landmarks68"])
    assert tr.pretrained and tr.space.name == "landmarks68" and tr.info["crop_margin"] == 0.05
    photo = load_image(EXAMPLES / "astronaut.jpg")
    crop = crop_face(photo, detect_faces(photo)[0], margin=0.05, shift=0.08).image
    lm = MEAN_FACE.numpy()
    down = lm.copy()
    down[68:][48:68] += 0.06                           # the mouth 6 % of the crop lower
    out = tr.translate(crop, np.stack([lm, down])).astype(np.float32)
    s = crop.shape[0]
    mouth = (slice(int(0.6 * s), int(0.95 * s)), slice(int(0.3 * s), int(0.7 * s)))
    moved = np.abs(out[1][mouth] - out[0][mouth]).mean()
    rest = np.abs(out[1][: int(0.4 * s)] - out[0][: int(0.4 * s)]).mean()
    assert moved > 3 * rest and moved > 2.0            # the mouth moves, the eyes stay


def test_ganimation_animation_takes_the_lipsync_stage_and_it_can_be_turned_off(tmp_path) -> None:
    from speechface.pretrained import DEFAULT_MODELS

    wave = load_audio(EXAMPLES / "speech.wav")[:32000].numpy()
    gan = Translator.from_pretrained(DEFAULT_MODELS["translator_ganimation"])
    on = animate(wave, EXAMPLES / "astronaut.jpg", translator=gan, lipsync=True,
                 sample_rate=16000, progress=False)
    off = animate(wave, EXAMPLES / "astronaut.jpg", translator=gan, lipsync=False,
                  sample_rate=16000, progress=False)
    assert on.info["lipsync"] == "landmark_warp.lfw64-pairs" and off.info["lipsync"] is None
    assert len(on) == len(off) == 50
    motion_on = on.frames.astype(np.float32).std(0).mean()
    motion_off = off.frames.astype(np.float32).std(0).mean()
    assert motion_on > 2 * motion_off                   # the mouth stage adds visible motion
    with pytest.raises(ModelError, match="margin"):     # an explicit stage needs its framing
        animate(wave, EXAMPLES / "astronaut.jpg", translator=gan, lipsync=True, margin=0.35,
                sample_rate=16000, progress=False)
    named = animate(wave, EXAMPLES / "astronaut.jpg", translator=gan, sample_rate=16000,
                    lipsync="landmark_warp.lfw64-pairs", progress=False)
    np.testing.assert_array_equal(named.frames[:5], on.frames[:5])
    bad = Translator.create("landmark_warp", space="landmarks68", image_size=32, conv_dim=8,
                            depth=2)
    bad.info = {"crop_margin": 0.35}
    with pytest.raises(ModelError, match="margin"):
        animate(wave, EXAMPLES / "astronaut.jpg", translator=gan, sample_rate=16000,
                lipsync=bad, progress=False)
