"""The mesh renderer (``mesh_warp``): geometry, expression control on a real photo, the fit on
real clips, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import EXAMPLES, need_shared
from speechface.render.mesh import au17_to_blendshapes, similarity
from speechface.teachers.mediapipe import BLENDSHAPE_NAMES, blendshapes_to_au17

AU = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
      "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")


def _au(**values: float) -> np.ndarray:
    a = np.zeros(17, np.float32)
    for k, v in values.items():
        a[AU.index(k)] = v
    return a


@pytest.fixture(scope="module")
def packaged():
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface.render.translators import Translator

    return Translator.from_pretrained("mesh_warp.au17-mediapipe")


@pytest.fixture(scope="module")
def crop():
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface.render.face import crop_face, find_face, load_image

    photo = load_image(need_shared("data", "faces", "obama2.jpg"))
    return crop_face(photo, find_face(photo)).image


def _observe(img: np.ndarray):
    from speechface.teachers.mediapipe import MediaPipeTeacher

    with MediaPipeTeacher(running_mode="image") as t:
        obs = t.observe(img)
    assert obs.found
    return obs


# --------------------------------------------------------------------------- pure geometry
def test_au_to_blendshapes_inverts_the_proxy() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 5, (50, 17)).astype(np.float32)
    a[:, 14] = np.clip(a[:, 14], 0, a[:, 15] + 2.5)       # lowerDown scores stay within 0-1
    back = blendshapes_to_au17(np.clip(au17_to_blendshapes(a), 0, 1))
    np.testing.assert_allclose(back, a, atol=1e-4)
    bs = au17_to_blendshapes(_au(AU26=2.0, AU25=1.0))       # lips held closed beyond the jaw
    assert bs[BLENDSHAPE_NAMES.index("jawOpen")] == pytest.approx(0.4)
    assert bs[BLENDSHAPE_NAMES.index("mouthClose")] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="17"):
        au17_to_blendshapes(np.zeros(16))


def test_similarity_recovers_a_rotation_scale_and_shift() -> None:
    rng = np.random.default_rng(1)
    p = rng.normal(size=(30, 3))
    c, s_ = np.cos(0.3), np.sin(0.3)
    r = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
    s, r_hat, t = similarity(p, 1.7 * p @ r.T + [3, -2, 1])
    assert s == pytest.approx(1.7) and np.allclose(r_hat, r) and np.allclose(t, [3, -2, 1])


# --------------------------------------------------------------------------- warp on a real photo
def test_au_zero_or_the_photo_own_expression_gives_the_photo_back_exactly(packaged, crop
                                                                         ) -> None:
    net = packaged.network
    keep = net.photo_condition(crop)
    assert keep[AU.index("AU26")] > 1 and keep[AU.index("AU12")] == 0   # an open, smiling mouth
    np.testing.assert_array_equal(packaged.translate(crop, keep), crop)
    closing = packaged.translate(crop, np.zeros(17))      # the jaw follows the condition
    assert (closing != crop).any()
    rig = net.rig(crop)
    own = blendshapes_to_au17(rig.found_bs)
    net.keep_expression = False                           # the condition replaces the photo's
    try:
        out = packaged.translate(crop, np.stack([own, np.zeros(17, np.float32)]))
    finally:
        net.keep_expression = True
    np.testing.assert_array_equal(out[0], crop)
    assert (out[1] != crop).any()                          # AU 0 = neutral: the smile goes


def test_warp_is_piecewise_affine_and_leaves_outside_pixels_untouched(packaged, crop) -> None:
    import cv2

    net = packaged.network
    rig = net.rig(crop)
    h, w = crop.shape[:2]
    coords = np.zeros(crop.shape, np.float32)             # each pixel holds its own x, y
    coords[..., 0] = np.arange(w)[None, :]
    coords[..., 1] = np.arange(h)[:, None]
    delta = net.blendshape_delta(_au(AU26=4, AU25=4, AU12=3, AU01=3)[None], rig)[0]
    tgt = net.target_vertices(delta, rig)
    assert np.abs(tgt - rig.src).max() > 3                 # something moves by pixels
    was, net.mouth_interior = net.mouth_interior, False
    try:
        out = net.warp_frame(coords, rig, tgt).astype(np.float64)
    finally:
        net.mouth_interior = was
    # inside target triangles of the mesh: the pixel samples the affine image of itself
    tri = rig.triangles
    q, p = tgt[tri], rig.src[tri]
    e1, e2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
    area = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) / 2
    errors = []
    for k in np.flatnonzero(area > 60):
        c = q[k].mean(0)
        x, y = int(round(c[0])), int(round(c[1]))
        bary = np.linalg.solve(np.vstack([q[k].T, np.ones(3)]), [x, y, 1])
        expected = bary @ p[k]
        errors.append(np.abs(out[y, x, :2] - expected).max())
    # exact inside triangles up to the Lanczos kernel (the rare misses: a centroid under a
    # neighbour that folds over it)
    errors = np.array(errors)
    assert len(errors) > 100 and np.median(errors) < 0.05 and (errors > 1.0).mean() < 0.05
    # outside the static ring: bit-identical (also with the painted mouth)
    full = packaged.translate(crop, _au(AU26=4, AU25=4, AU12=3, AU01=3))
    ring = rig.src[468:468 + len(net.oval)]
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(ring).astype(np.int32)], 1)
    inside = cv2.dilate(inside, np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_array_equal(full[~inside], crop[~inside])
    assert (full[inside] != crop[inside]).any()


def test_mouth_opens_with_au26_on_a_real_photo(packaged, crop) -> None:
    closed, opened = packaged.translate(crop, np.stack([_au(), _au(AU26=4, AU25=4)]))
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    a, b = _observe(closed), _observe(opened)
    assert b.blendshapes[jaw] > a.blendshapes[jaw] + 0.3
    h = crop.shape[0]
    gap_a = (a.landmarks[14, 1] - a.landmarks[13, 1]) * h
    gap_b = (b.landmarks[14, 1] - b.landmarks[13, 1]) * h
    assert gap_b > gap_a + 0.02 * h                        # the lips part
    # the painted opening is dark: the mouth centre got darker
    y, x = int(0.5 * (b.landmarks[13, 1] + b.landmarks[14, 1]) * h), int(b.landmarks[13, 0] * h)
    assert opened[y - 1:y + 2, x - 1:x + 2].mean() < closed[y - 1:y + 2, x - 1:x + 2].mean() - 30


def test_brows_move_with_au01_02_and_au04(packaged, crop) -> None:
    out = packaged.translate(crop, np.stack([_au(), _au(AU01=4, AU02=4), _au(AU04=4)]))
    brow = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
    obs = [_observe(o) for o in out]
    h = crop.shape[0]
    iod = np.linalg.norm((obs[0].landmarks[33, :2] - obs[0].landmarks[263, :2]) * h)
    y = [o.landmarks[brow, 1].mean() * h for o in obs]
    assert y[1] < y[0] - 0.01 * iod                        # raised
    assert y[2] > y[0] + 0.01 * iod                        # lowered
    bs = [o.blendshapes for o in obs]
    assert bs[1][BLENDSHAPE_NAMES.index("browInnerUp")] > bs[0][BLENDSHAPE_NAMES.index("browInnerUp")]
    down = [BLENDSHAPE_NAMES.index("browDownLeft"), BLENDSHAPE_NAMES.index("browDownRight")]
    assert bs[2][down].mean() > bs[0][down].mean()


def test_bad_inputs_say_what_is_wrong(packaged, crop) -> None:
    from speechface.core.errors import ImageError, NoFaceError

    with pytest.raises(NoFaceError, match="no face"):
        packaged.translate(np.full((96, 96, 3), 128, np.uint8), np.zeros(17))
    with pytest.raises(ImageError, match="uint8"):
        packaged.translate(crop.astype(np.float32), np.zeros(17))
    with pytest.raises(ValueError, match="17"):
        packaged.translate(crop, np.zeros(5))


# --------------------------------------------------------------------------- fit, save, load
def test_fit_on_real_clips_and_save_load_round_trip(tmp_path) -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface.render.fit import evaluate_basis, fit_basis
    from speechface.render.tracks import track_clip
    from speechface.render.translators import Translator
    from speechface.render.translators.mesh_warp import build_renderer

    grid = need_shared("data", "av_clips", "grid_s1")
    files = sorted(grid.glob("*.mp4"))[:3]
    tracks = []
    for i, f in enumerate(files):
        t = dict(track_clip(f, tmp_path / "cache"))
        t["group"] = f"clip{i}"
        tracks.append(t)
    assert (tmp_path / "cache" / f"grid_s1__{files[0].stem}.npz").is_file()   # cached
    model = fit_basis(tracks[:2], ridges=(3e-4,))
    assert model["basis"].shape == (51, 468, 3) and np.isfinite(model["basis"]).all()
    jaw = model["basis"][BLENDSHAPE_NAMES.index("jawOpen") - 1]
    assert jaw[152, 1] > 0.1 > abs(jaw[10, 1])             # the chin drops, the forehead stays
    held = evaluate_basis(model, tracks[2:])
    assert held["r2_mouth"] > 0.2 and held["rmse_mouth_iod"] < held["rms_motion_mouth_iod"]
    tr = build_renderer(model, name="test-mesh")
    tr.save_pretrained(tmp_path / "m")
    back = Translator.from_pretrained(tmp_path / "m")
    assert back.name == "test-mesh" and back.network.arch == "mesh_warp"
    for k, v in tr.network.state_dict().items():
        assert np.array_equal(v.numpy(), back.network.state_dict()[k].numpy()), k
    from speechface.render.face import crop_face, find_face, load_image

    photo = load_image(EXAMPLES / "astronaut.jpg")
    c = crop_face(photo, find_face(photo)).image
    a = _au(AU26=3, AU25=3)
    np.testing.assert_array_equal(tr.translate(c, a), back.translate(c, a))


def test_animate_defaults_to_the_mesh_renderer_without_the_lipsync_stage() -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface import animate
    from speechface.audio import load_audio

    wave = load_audio(EXAMPLES / "speech.wav")[:32000].numpy()
    anim = animate(wave, EXAMPLES / "astronaut.jpg", sample_rate=16000, progress=False)
    assert anim.info["translator"] == "mesh_warp.au17-mediapipe" and anim.info["lipsync"] is None
    frames = anim.frames
    photo = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
        EXAMPLES / "astronaut.jpg").convert("RGB"))
    assert frames.shape[1:] == photo.shape and len(frames) == 50
    x0, y0, x1, y1 = (int(v) for v in anim.face.xyxy)
    changed = (frames != photo[None]).any(axis=(0, 3))
    ys, xs = np.nonzero(changed)
    assert len(ys) > 0                                     # something moves
    side = max(x1 - x0, y1 - y0)
    assert xs.min() > x0 - side and xs.max() < x1 + side and ys.max() < y1 + side
    assert frames.astype(np.float32).std(0).max() > 20     # visibly (the mouth)


def test_landmark_renderer_projects_targets_onto_the_basis(crop) -> None:
    from speechface.render.translators import Translator

    tr = Translator.from_pretrained("mesh_warp.landmarks68-mediapipe")
    assert tr.space.name == "landmarks68" and tr.network.arch == "mesh_warp"
    own = tr.network.photo_condition(crop)
    np.testing.assert_array_equal(tr.translate(crop, own), crop)          # own points: photo
    shifted = own.copy()
    shifted[:68] += 0.02                       # the whole head 2 % right: no blendshape for it
    drop = own.copy()
    drop[68 + 5:68 + 12] += 0.03               # the chin ...
    drop[68 + 55:68 + 60] += 0.03              # ... and the lower lip 3 % of the crop lower
    out = tr.translate(crop, np.stack([shifted, drop]))
    moved = np.abs(out[0].astype(np.int16) - crop).mean()
    assert moved < 1.0                         # head motion is not rendered
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    assert _observe(out[1]).blendshapes[jaw] > _observe(crop).blendshapes[jaw] + 0.05


def test_animate_landmark_path_with_the_mesh_renderer() -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface import animate
    from speechface.audio import load_audio
    from speechface.render.translators import Translator

    tr = Translator.from_pretrained("mesh_warp.landmarks68-mediapipe")
    wave = load_audio(EXAMPLES / "speech.wav")[:16000].numpy()
    anim = animate(wave, EXAMPLES / "astronaut.jpg", translator=tr, space="landmarks68",
                   sample_rate=16000, progress=False)
    assert anim.info["translator"] == "mesh_warp.landmarks68-mediapipe" and len(anim) == 25
    assert anim.frames.astype(np.float32).std(0).max() > 5


def test_speechface_train_mesh_fits_and_writes_both_renderers(tmp_path) -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    import json

    from conftest import REPO
    from speechface.cli import main
    from speechface.render.translators import Translator

    grid = need_shared("data", "av_clips", "grid_s1")
    clips = [str(p) for p in sorted(grid.glob("*.mp4"))[:3]]
    cfg = {"inputs": clips, "out": str(tmp_path / "au"), "landmarks_out": str(tmp_path / "lm"),
           "val_config": str(REPO / "configs" / "cause_cnn.yaml"),
           "groups": str(REPO / "configs" / "av_clips_groups.json"),
           "cache": str(tmp_path / "cache"), "calibration_photos": 1}
    (tmp_path / "mesh.json").write_text(json.dumps(cfg))
    assert main(["train", "mesh", "--config", str(tmp_path / "mesh.json")]) == 0
    au = Translator.from_pretrained(tmp_path / "au")
    lm = Translator.from_pretrained(tmp_path / "lm")
    assert au.space.name == "au17" and lm.space.name == "landmarks68"
    assert au.info["fit"]["clips"] == 3 and au.info["calibration"]["photos"] == 1
    np.testing.assert_array_equal(au.network.basis.numpy(), lm.network.basis.numpy())
    assert main(["train", "mesh", "--set", "grid_every=0"]) != 0       # one-line error
