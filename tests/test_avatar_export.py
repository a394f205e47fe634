"""ARKit-52 space, AU17 <-> ARKit conversions and the avatar exporters (Live Link, JSON, three.js,
Blender)."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechface import get_space
from speechface.avatars.exporters import (
    export_track,
    livelink_timecode,
    resample_track,
    write_blender_script,
    write_curves_json,
    write_livelink_csv,
    write_threejs_clip,
)
from speechface.core.results import Prediction
from speechface.spaces.blendshapes import (
    ARKIT52_NAMES,
    BLENDSHAPE_GROUPS,
    arkit52_to_au17,
    arkit52_to_mediapipe,
    au17_to_arkit52,
    mediapipe_to_arkit52,
)
from speechface.teachers.mediapipe import BLENDSHAPE_NAMES, au17_to_blendshapes, blendshapes_to_au17

REPO = Path(__file__).resolve().parents[1]

# The Live Link Face CSV header as published for the iPhone app's recordings (Epic's Live Link
# Face app; the column list every open importer reads): written out here by hand, on purpose not
# imported from speechface, so that the parser below is independent of the writer.
PUBLISHED_LIVE_LINK_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,"
    "EyeLookUpLeft,EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,"
    "EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,"
    "JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,"
    "MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,"
    "TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
    "RightEyePitch,RightEyeRoll").split(",")


def parse_live_link_csv(path: Path, fps: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """An independent reader of Live Link Face CSVs: (times in s, {blendshape: values})."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header == PUBLISHED_LIVE_LINK_HEADER
    times, cols = [], {name: [] for name in header[2:]}
    for row in body:
        assert len(row) == len(header)
        m = re.fullmatch(r"(\d\d):(\d\d):(\d\d):(\d\d)\.(\d\d\d)", row[0])
        assert m, row[0]
        h, mi, s, ff, sub = map(int, m.groups())
        times.append(h * 3600 + mi * 60 + s + (ff + sub / 1000) / fps)
        assert int(row[1]) == 61  # 52 blendshapes + 9 rotations
        for name, v in zip(header[2:], row[2:]):
            cols[name].append(float(v))
    return np.asarray(times), {k: np.asarray(v) for k, v in cols.items()}


def random_track(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 52)).astype(np.float32)


# --------------------------------------------------------------------------- space + conversions
def test_space_is_the_52_arkit_names_in_mediapipe_order_with_tongue_out_last():
    space = get_space("blendshapes52")
    assert space.dim == 52 and (space.low, space.high) == (0.0, 1.0)
    assert space.labels[:51] == BLENDSHAPE_NAMES[1:]  # MediaPipe's order without _neutral
    assert space.labels[51] == "tongueOut" and "_neutral" not in space.labels
    assert len(set(space.labels)) == 52
    # the same set of names as the Live Link Face columns (ARKit's 52), up to the first letter
    published = {n.lower() for n in PUBLISHED_LIVE_LINK_HEADER[2:54]}
    assert {n.lower() for n in space.labels} == published
    groups = {g: len(v) for g, v in BLENDSHAPE_GROUPS.items()}
    assert groups == {"jaw/mouth": 27, "brows": 5, "eyes": 14, "cheeks/nose": 5, "tongue": 1}


def test_mediapipe_to_arkit_drops_neutral_and_adds_tongue_out():
    mp = np.arange(52, dtype=np.float32)[None].repeat(3, 0) / 100
    ark = mediapipe_to_arkit52(mp)
    for i, name in enumerate(ARKIT52_NAMES[:51]):
        assert ark[0, i] == mp[0, BLENDSHAPE_NAMES.index(name)]
    assert (ark[:, 51] == 0).all()
    back = arkit52_to_mediapipe(ark)
    np.testing.assert_array_equal(back[:, 1:], mp[:, 1:])
    assert (back[:, 0] == 0).all()


def test_au17_round_trip_is_exact_in_range():
    rng = np.random.default_rng(1)
    au = rng.uniform(0, 5, (500, 17)).astype(np.float32)
    i25, i26 = 14, 15
    au[:, i25] = np.minimum(au[:, i25], au[:, i26] + 2.5)  # lips at most 2.5 beyond the jaw
    np.testing.assert_allclose(arkit52_to_au17(au17_to_arkit52(au)), au, atol=1e-5)
    np.testing.assert_allclose(blendshapes_to_au17(au17_to_blendshapes(au)), au, atol=1e-5)
    bs = au17_to_arkit52(au)
    assert bs.shape == (500, 52) and bs.min() >= 0 and bs.max() <= 1
    # lips held closed with the jaw open: mouthClose carries it
    one = np.zeros(17, np.float32)
    one[i26] = 3.0
    b = au17_to_arkit52(one)
    assert b[ARKIT52_NAMES.index("mouthClose")] == pytest.approx(0.6)
    assert arkit52_to_au17(b)[i25] == pytest.approx(0.0, abs=1e-6)
    # beyond the documented range the lower lip saturates
    far = np.zeros(17, np.float32)
    far[i25] = 4.0
    assert arkit52_to_au17(au17_to_arkit52(far))[i25] == pytest.approx(2.5)


def test_arkit_to_au_to_arkit_is_a_projection():
    x = random_track(200)
    au = arkit52_to_au17(x)
    again = arkit52_to_au17(au17_to_arkit52(au))
    # what survives AU17 survives a second trip unchanged (AU25 within the documented range)
    ok = au[:, 14] <= au[:, 15] + 2.5
    np.testing.assert_allclose(again[ok], au[ok], atol=1e-5)
    # symmetric blendshapes that the AUs carry come back; gaze and tongueOut do not
    back = au17_to_arkit52(au)
    assert (back[:, ARKIT52_NAMES.index("eyeLookUpLeft")] == 0).all()
    assert (back[:, ARKIT52_NAMES.index("tongueOut")] == 0).all()
    sym = (x[:, ARKIT52_NAMES.index("mouthSmileLeft")] + x[:, ARKIT52_NAMES.index("mouthSmileRight")]) / 2
    np.testing.assert_allclose(back[:, ARKIT52_NAMES.index("mouthSmileLeft")], np.clip(sym, 0, 1),
                               atol=1e-5)


def test_conversions_keep_torch_tensors_and_reject_bad_shapes():
    import torch

    t = torch.rand(4, 17) * 5
    out = au17_to_arkit52(t)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 52)
    assert isinstance(arkit52_to_au17(out), torch.Tensor)
    with pytest.raises(ValueError, match="last dimension of 17"):
        au17_to_arkit52(np.zeros((3, 16)))
    with pytest.raises(ValueError, match="last dimension of 52"):
        arkit52_to_au17(np.zeros((3, 51)))


# --------------------------------------------------------------------------- Live Link CSV
def test_live_link_csv_reads_back_with_an_independent_parser(tmp_path):
    x = random_track(60)
    path = tmp_path / "take.csv"
    write_livelink_csv(x, path)
    times, cols = parse_live_link_csv(path, fps=25)
    np.testing.assert_allclose(times, np.arange(60) / 25, atol=1e-6)
    for j, name in enumerate(ARKIT52_NAMES):
        col = cols[name[0].upper() + name[1:]]
        np.testing.assert_allclose(col, x[:, j], atol=5e-5)
    for rot in PUBLISHED_LIVE_LINK_HEADER[54:]:
        assert (cols[rot] == 0).all()


def test_live_link_csv_at_60_fps_resamples_the_curves(tmp_path):
    x = np.zeros((26, 52), np.float32)
    x[:, ARKIT52_NAMES.index("jawOpen")] = np.linspace(0, 1, 26)  # a ramp over 1 s
    path = tmp_path / "take60.csv"
    write_livelink_csv(x, path, fps=60)
    times, cols = parse_live_link_csv(path, fps=60)
    assert len(times) == 61  # 0 .. 1 s inclusive at 60 fps
    np.testing.assert_allclose(times, np.arange(61) / 60, atol=1e-6)
    np.testing.assert_allclose(cols["JawOpen"], np.linspace(0, 1, 61), atol=1e-4)


def test_timecodes_carry_over_seconds_minutes_and_hours():
    assert livelink_timecode(24, 25) == "00:00:00:24.000"
    assert livelink_timecode(25, 25) == "00:00:01:00.000"
    assert livelink_timecode(25 * 3661, 25) == "01:01:01:00.000"
    assert livelink_timecode(1, 30) == "00:00:00:01.000"
    assert livelink_timecode(0, 25, start_seconds=0.5) == "00:00:00:12.500"


def test_resample_keeps_endpoints_and_rejects_bad_rates():
    x = random_track(11)
    y = resample_track(x, 25, 50)
    assert len(y) == 21
    np.testing.assert_allclose(y[::2], x, atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        resample_track(x, 25, 0)


def test_au17_predictions_export_through_the_inverse_mapping(tmp_path):
    au = np.zeros((10, 17), np.float32)
    au[:, 15] = 2.5  # AU26
    au[:, 14] = 2.5  # AU25
    pred = Prediction(au, get_space("au17").labels, get_space("au17").columns, "au17",
                      model="test", pretrained=False)
    path = tmp_path / "au.csv"
    export_track(pred, path, "livelink")
    _, cols = parse_live_link_csv(path, fps=25)
    np.testing.assert_allclose(cols["JawOpen"], 0.5)
    landmarks = Prediction(np.zeros((3, 136), np.float32), get_space("landmarks68").labels,
                           get_space("landmarks68").columns, "landmarks68")
    with pytest.raises(ValueError, match="cannot export a landmarks68"):
        export_track(landmarks, tmp_path / "x.csv", "livelink")
    with pytest.raises(ValueError, match="NaN"):
        write_livelink_csv(np.full((3, 52), np.nan), tmp_path / "nan.csv")
    with pytest.raises(ValueError, match=r"\(frames, 52\)"):
        write_livelink_csv(np.zeros((3, 17)), tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="unknown format"):
        export_track(pred, tmp_path / "x.fbx", "fbx")


# --------------------------------------------------------------------------- JSON + three.js
def test_curves_json_and_threejs_clip(tmp_path):
    x = random_track(30)
    write_curves_json(x, tmp_path / "c.json", fps=30)
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["names"] == list(ARKIT52_NAMES) and doc["fps"] == 30.0
    n = doc["frames"]
    assert n == len(resample_track(x, 25, 30)) and len(doc["times"]) == n
    assert doc["times"][1] == pytest.approx(1 / 30, abs=1e-6)
    assert set(doc["curves"]) == set(ARKIT52_NAMES)
    assert all(len(v) == n for v in doc["curves"].values())
    np.testing.assert_allclose(doc["curves"]["jawOpen"][0], x[0, ARKIT52_NAMES.index("jawOpen")],
                               atol=5e-5)

    write_threejs_clip(x, tmp_path / "clip.json", name="hello")
    clip = json.loads((tmp_path / "clip.json").read_text())
    assert clip["name"] == "hello" and clip["blendMode"] == 2500
    assert clip["duration"] == pytest.approx(29 / 25)
    assert len(clip["tracks"]) == 52
    for tr, name in zip(clip["tracks"], ARKIT52_NAMES):
        assert tr["name"] == f".morphTargetInfluences[{name}]" and tr["type"] == "number"
        assert len(tr["times"]) == len(tr["values"]) == 30
        assert tr["times"] == sorted(tr["times"])


# --------------------------------------------------------------------------- Blender
def _blender_script(tmp_path: Path, x: np.ndarray, fps: float = 25) -> Path:
    path = tmp_path / "take.py"
    write_blender_script(x, path, fps=fps)
    return path


def test_blender_script_structure(tmp_path):
    x = random_track(20)
    path = _blender_script(tmp_path, x)
    tree = ast.parse(path.read_text())
    consts = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)}
    names = ast.literal_eval(consts["NAMES"])
    curves = ast.literal_eval(consts["CURVES"])
    assert names == list(ARKIT52_NAMES) and ast.literal_eval(consts["FPS"]) == 25.0
    assert list(curves) == names and all(len(v) == 20 for v in curves.values())
    np.testing.assert_allclose(np.array([curves[n] for n in names]).T, x, atol=5e-5)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"normalise", "targets", "key", "main", "demo_object"} <= funcs
    imports = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert imports <= {"bpy", "json", "re", "sys"}  # nothing outside Blender's Python


def test_blender_script_name_matching_without_blender(tmp_path):
    """Run the script's own name matcher (bpy stubbed): rig naming conventions map to ARKit."""
    path = _blender_script(tmp_path, random_track(2))
    src = path.read_text()
    ns: dict = {}
    stub = type(sys)("bpy")
    sys.modules["bpy"] = stub
    try:
        exec(compile(src.replace('if __name__ == "__main__":', "if False:"), str(path), "exec"), ns)
    finally:
        del sys.modules["bpy"]
    wanted = ns["WANTED"]
    for rig_name, arkit in [("eyeBlinkLeft", "eyeBlinkLeft"), ("EyeBlinkLeft", "eyeBlinkLeft"),
                            ("eye_blink_L", "eyeBlinkLeft"), ("jaw.open", "jawOpen"),
                            ("MouthSmile_R", "mouthSmileRight"), ("tongueOut", "tongueOut")]:
        assert wanted.get(ns["normalise"](rig_name)) == arkit, rig_name
    assert ns["normalise"]("Basis") not in wanted


@pytest.mark.skipif(shutil.which("blender") is None, reason="Blender is not installed")
def test_blender_script_keys_shape_keys_in_blender(tmp_path):
    x = random_track(30, seed=3)
    path = _blender_script(tmp_path, x, fps=25)
    blend = tmp_path / "out.blend"
    proc = subprocess.run(["blender", "-b", "--factory-startup", "--python", str(path), "--",
                           "--demo", "--start", "5", "--save", str(blend)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SPEECHFACE_RESULT ")][-1]
    result = json.loads(line.split(" ", 1)[1])
    obj = result["objects"]["speechface_demo_face"]
    assert result["frames"] == 30 and len(obj["keyed"]) == 52 and obj["missing"] == []
    # read the keyed values back from the saved file, in Blender, at some frames
    check = tmp_path / "check.py"
    check.write_text(
        "import bpy, json\n"
        "scene = bpy.context.scene\n"
        "obj = bpy.data.objects['speechface_demo_face']\n"
        "out = {'fps': scene.render.fps / scene.render.fps_base, 'range': [scene.frame_start, scene.frame_end], 'v': {}}\n"
        "for f in (5, 6, 20, 34):\n"
        "    scene.frame_set(f)\n"
        "    out['v'][f] = {k.name: k.value for k in obj.data.shape_keys.key_blocks}\n"
        "print('CHECK ' + json.dumps(out))\n")
    proc = subprocess.run(["blender", "-b", str(blend), "--python", str(check)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    got = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("CHECK ")][-1][6:])
    assert got["fps"] == pytest.approx(25.0) and got["range"] == [5, 34]
    for f, vals in got["v"].items():
        k = int(f) - 5
        for j, name in enumerate(ARKIT52_NAMES):
            assert vals[name] == pytest.approx(float(x[k, j]), abs=1e-3), (f, name)


def test_ccc_loss_rewards_following_the_movement():
    import torch

    space = get_space("blendshapes52")
    t = torch.linspace(0, 6.28, 100)
    y = torch.zeros(2, 100, 52)
    y[..., 24] = 0.3 + 0.2 * torch.sin(t)  # jawOpen moves, the rest is constant
    m = torch.ones(2, 100, dtype=torch.bool)
    assert float(space.loss_fn(y, y, m, kind="ccc")) == pytest.approx(0.0, abs=1e-6)
    flat = torch.full_like(y, 0.3)
    flat[..., :24] = 0
    flat[..., 25:] = 0
    # same L1 order of magnitude, but a flat output pays the whole (1 - CCC) of jawOpen
    assert float(space.loss_fn(flat, y, m, kind="ccc")) > 0.9
    scaled = y.clone()
    scaled[..., 24] = 0.3 + 0.1 * torch.sin(t)  # follows, at half the size: CCC = 0.8
    loss = float(space.loss_fn(scaled, y, m, kind="ccc"))
    l1 = float((scaled - y).abs().mean())
    assert loss == pytest.approx(l1 + (1 - 0.8), abs=1e-3)
    # masked frames do not count; (T, D) is one sequence
    m2 = m.clone()
    m2[:, 50:] = False
    bad = y.clone()
    bad[:, 50:] = 5.0
    assert float(space.loss_fn(bad, y, m2, kind="ccc")) == pytest.approx(0.0, abs=1e-6)
    assert float(space.loss_fn(y[0], y[0], m[0], kind="ccc")) == pytest.approx(0.0, abs=1e-6)
    raw = torch.zeros(2, 100, 52, requires_grad=True)
    space.loss_fn(raw, y, m, kind="ccc").backward()
    assert raw.grad[..., 24].abs().sum() > 0
    with pytest.raises(ValueError, match="choose l1, mse, kl or ccc"):
        space.loss_fn(raw, y, m, kind="huber")


def test_cli_predict_blendshapes52_livelink_with_the_packaged_model(tmp_path):
    from conftest import EXAMPLES

    out = tmp_path / "take.csv"
    proc = subprocess.run([sys.executable, "-m", "speechface.cli", "predict",
                           str(EXAMPLES / "speech.wav"), "--space", "blendshapes52", "-o",
                           str(out), "--format", "livelink", "--fps", "60"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "blendshapes52" in proc.stderr and "[pretrained]" in proc.stderr
    times, cols = parse_live_link_csv(out, fps=60)
    assert np.diff(times) == pytest.approx(1 / 60)
    assert cols["JawOpen"].std() > 0.005  # the packaged model moves the jaw with the speech
    bad = subprocess.run([sys.executable, "-m", "speechface.cli", "predict",
                          str(EXAMPLES / "speech.wav"), "-o", str(tmp_path / "a.csv"),
                          "--fps", "60"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "keeps the model's 25 fps" in bad.stderr
