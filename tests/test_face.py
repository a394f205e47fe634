"""speechface.render.face: loading photos, detecting faces (real portraits), crop / paste-back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, SHARED
from speechface.core.errors import ImageError, NoFaceError
from speechface.render import face as face_mod
from speechface.render.face import (
    FaceBox,
    crop_face,
    detect_faces,
    face_mask,
    find_face,
    load_image,
    paste_face,
    select_face,
)

ASTRONAUT = EXAMPLES / "astronaut.jpg"
PORTRAITS = ("biden.jpg", "obama.jpg", "obama2.jpg")


def landmarker_model() -> Path:
    """The FaceLandmarker bundle (shared data or the user cache), else skip."""
    pytest.importorskip("mediapipe")
    for p in (os.environ.get("SPEECHFACE_FACE_LANDMARKER"),
              SHARED / "models" / "face_landmarker.task",
              Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
              / "speechface" / "face_landmarker.task"):
        if p and Path(p).is_file():
            return Path(p)
    pytest.skip(f"FaceLandmarker model not found in {SHARED / 'models'} or the cache "
                "(set SPEECHFACE_SHARED)")


@pytest.fixture
def mp_model(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = landmarker_model()
    monkeypatch.setenv("SPEECHFACE_FACE_LANDMARKER", str(path))
    return path


def portrait(name: str) -> Path:
    p = SHARED / "data" / "faces" / name
    if not p.exists():
        pytest.skip(f"real data not found at {p} (set SPEECHFACE_SHARED)")
    return p


# --------------------------------------------------------------------------- detection
@pytest.mark.shared
@pytest.mark.parametrize("name", PORTRAITS)
def test_detects_the_face_in_real_portraits_and_the_crop_is_centred_on_it(name: str, mp_model: Path
                                                                          ) -> None:
    photo = load_image(portrait(name))
    faces = detect_faces(photo)
    assert len(faces) == 1
    f = faces[0]
    h, w = photo.shape[:2]
    assert f.backend == "mediapipe" and f.landmarks is not None and f.landmarks.shape == (478, 3)
    assert 0 <= f.x0 < f.x1 <= w and 0 <= f.y0 < f.y1 <= h
    assert 0.15 * w < f.width < 0.6 * w  # an official portrait: head and shoulders
    assert f.height > f.width  # forehead-to-chin extent
    crop = crop_face(photo, f, size=256)
    assert crop.image.shape == (256, 256, 3) and crop.side == round(max(f.width, f.height) * 1.7)
    # the crop shows the same face, centred and at the size the margin implies
    again = detect_faces(crop.image)
    assert len(again) == 1
    cx, cy = again[0].center
    assert abs(cx - 128) < 12 and abs(cy - 128) < 12
    assert max(again[0].width, again[0].height) == pytest.approx(256 / 1.7, rel=0.1)


def test_detects_the_astronaut(mp_model: Path) -> None:
    box = find_face(ASTRONAUT)
    assert box.xyxy == pytest.approx((181, 72, 270, 178), abs=8)


def test_large_image_is_detected_on_a_downscaled_copy(mp_model: Path) -> None:
    small = load_image(ASTRONAUT)
    big = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)  # 8192 x 8192
    ref = find_face(small)
    box = find_face(big)
    assert np.allclose(box.xyxy, np.array(ref.xyxy) * 16, atol=16 * 6)
    crop = crop_face(big, box, size=128)
    assert crop.image.shape == (128, 128, 3)


def test_several_faces_left_to_right_largest_by_default_and_a_clear_index_error(mp_model: Path
                                                                               ) -> None:
    astro = load_image(ASTRONAUT)
    small = np.asarray(Image.fromarray(astro).resize((360, 360)))
    canvas = np.full((512, 900, 3), 200, np.uint8)
    canvas[:, 388:] = astro  # large face on the right
    canvas[40:400, 0:360] = small  # smaller face on the left
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].center[0] < faces[1].center[0]
    assert faces[0].area < faces[1].area
    assert select_face(faces) is faces[1]
    assert select_face(faces, 0) is faces[0] and select_face(faces, -1) is faces[1]
    with pytest.raises(NoFaceError, match=r"face_index=2 but 2 faces were found in group.jpg: use face_index 0-1"):
        select_face(faces, 2, name="group.jpg")


def test_grey_image_has_no_face_and_the_error_names_the_file(mp_model: Path, tmp_path: Path
                                                            ) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(path)
    assert detect_faces(path) == []
    with pytest.raises(NoFaceError, match="no face found in .*grey.png"):
        find_face(path)


def test_opencv_fallback_when_mediapipe_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    cv2 = pytest.importorskip("cv2")
    if not os.path.isfile(os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""),
                                       "haarcascade_frontalface_default.xml")):
        pytest.skip("this OpenCV build ships no Haar cascades (opencv 5); the fallback needs "
                    "opencv-python-headless<5")
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    faces = detect_faces(ASTRONAUT)
    assert len(faces) >= 1
    box = max(faces, key=lambda f: f.area)
    assert box.backend == "opencv" and box.landmarks is None
    assert box.xyxy == pytest.approx((181, 72, 270, 178), abs=25)  # calibrated to mesh extents


def test_no_detector_at_all_is_a_clear_image_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImageError, match=r"speechface\[face\].*opencv-python-headless"):
        detect_faces(np.zeros((64, 64, 3), np.uint8))


# --------------------------------------------------------------------------- loading
def _roundtrip(tmp_path: Path, im: Image.Image, suffix: str = ".png") -> np.ndarray:
    path = tmp_path / f"img{suffix}"
    im.save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[-1] == 3
    assert out.flags["C_CONTIGUOUS"]
    return out


def test_image_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (40, 1))
    out = _roundtrip(tmp_path, Image.fromarray(grey, "L"))
    assert out.shape == (40, 64, 3) and (out == grey[..., None]).all()

    rgba = np.zeros((40, 64, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :32, 3] = 255  # left half opaque red, right half fully transparent
    out = _roundtrip(tmp_path, Image.fromarray(rgba, "RGBA"))
    assert (out[:, :32] == [200, 0, 0]).all() and (out[:, 32:] == 255).all()  # on white

    cmyk = Image.new("CMYK", (48, 40), (0, 255, 255, 0))  # pure red in CMYK
    out = _roundtrip(tmp_path, cmyk, ".jpg")
    assert abs(int(out[20, 20, 0]) - 255) < 8 and out[20, 20, 1:].max() < 8

    wide = (np.arange(64, dtype=np.uint16)[None] * 1040).repeat(40, 0)  # 0 .. 65520
    im16 = Image.fromarray(wide)
    assert im16.mode == "I;16"
    out = _roundtrip(tmp_path, im16)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255 and out[0, 32, 0] == round(32 * 1040 / 257)

    pal = Image.fromarray(np.zeros((40, 64), np.uint8), "P")
    pal.putpalette([10, 20, 30] + [0] * 765)
    out = _roundtrip(tmp_path, pal)
    assert (out == [10, 20, 30]).all()

    one = Image.fromarray(np.eye(40, 64, dtype=bool))
    out = _roundtrip(tmp_path, one)
    assert out[0, 0, 0] == 255 and out[0, 1, 0] == 0


def test_arrays_and_pil_images_are_accepted() -> None:
    assert load_image(np.zeros((40, 50), np.uint8)).shape == (40, 50, 3)
    assert load_image(np.full((40, 50, 3), 1.0, np.float32)).max() == 255
    assert load_image(np.full((40, 50, 1), 65535, np.uint16)).min() == 255
    rgba = np.zeros((40, 50, 4), np.uint8)  # fully transparent black -> white
    assert (load_image(rgba) == 255).all()
    assert load_image(Image.new("LA", (50, 40), (0, 255))).max() == 0
    with pytest.raises(ImageError, match="channels-first"):
        load_image(np.zeros((3, 40, 50), np.uint8))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (64, 40), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif)
    assert load_image(path).shape == (64, 40, 3)


@pytest.mark.parametrize("kind,needle", [
    ("missing", "not found"), ("dir", "is a directory"), ("empty", "empty"),
    ("corrupt", "not an image"), ("truncated", "cannot read"), ("tiny", "too small: 20x31"),
])
def test_bad_image_files_give_image_errors_naming_the_file(kind: str, needle: str,
                                                           tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.jpg"
    if kind == "dir":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(os.urandom(2000))
    elif kind == "truncated":
        buf = tmp_path / "full.jpg"
        Image.fromarray(np.random.randint(0, 255, (200, 200, 3), np.uint8)).save(buf)
        path.write_bytes(buf.read_bytes()[:3000])
    elif kind == "tiny":
        Image.new("RGB", (20, 31)).save(path)
    with pytest.raises(ImageError, match=needle) as e:
        load_image(path)
    assert f"{kind}.jpg" in str(e.value)


# --------------------------------------------------------------------------- crop / paste
@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)


def test_crop_records_its_transform_and_pads_at_the_border(photo: np.ndarray) -> None:
    c = crop_face(photo, (100, 50, 160, 130), margin=0.25)
    assert c.side == 120 and c.box == (70, 30, 190, 150) and c.size == 120
    assert (c.image == photo[30:150, 70:190]).all()
    edge = crop_face(photo, FaceBox(-20, -10, 40, 60), margin=0.5)  # off the top-left corner
    assert edge.x0 < 0 and edge.y0 < 0 and edge.image.shape == (140, 140, 3)
    rows, cols = edge.visible()
    inside = edge.image[-edge.y0:, -edge.x0:]
    assert (inside == photo[rows, cols]).all()
    assert (edge.image[0, -edge.x0:] == photo[0, cols]).all()  # edge-replicated padding
    with pytest.raises(ImageError, match="outside"):
        crop_face(photo, (1000, 1000, 1100, 1100), margin=0)


def test_paste_of_the_unchanged_crop_is_the_identity(photo: np.ndarray) -> None:
    c = crop_face(photo, (150, 100, 230, 200))
    assert (paste_face(photo, c, c.image) == photo).all()
    small = crop_face(photo, (150, 100, 230, 200), size=64)  # down and up again: close
    back = paste_face(photo, small, small.image).astype(int)
    assert np.abs(back - photo).mean() < 40  # random noise does not survive resizing


@pytest.mark.parametrize("box", [(150, 100, 230, 200), (-30, 200, 60, 320), (350, -20, 420, 60)])
def test_paste_changes_only_pixels_inside_the_crop_box(photo: np.ndarray, box) -> None:
    c = crop_face(photo, box, size=96)
    new = np.zeros((96, 96, 3), np.uint8)
    out = paste_face(photo, c, new, feather=0.1)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    changed = (out != photo).any(-1)
    outside = np.ones(photo.shape[:2], bool)
    outside[c.visible()] = False
    assert not changed[outside].any()  # bit-identical outside the crop box
    assert changed.any()
    assert (photo == crop_face(photo, box, size=96).image[0, 0]).any()  # input untouched


def test_paste_blends_with_a_feathered_mask(photo: np.ndarray) -> None:
    c = crop_face(photo, (150, 100, 230, 200))
    white = np.full((c.side, c.side, 3), 255, np.uint8)
    out = paste_face(photo, c, white, feather=0.1)
    cy = c.y0 + c.side // 2
    cx = c.x0 + c.side // 2
    assert (out[cy, cx] == 255).all()  # centre: the new face exactly
    corner = (c.y0 + 2, c.x0 + 2)
    assert (out[corner] == photo[corner]).all()  # crop corners: outside the ellipse
    m = face_mask(c.side, 0.1)
    band = (m > 0.2) & (m < 0.8)
    assert band.any()
    rows, cols = c.visible()
    mixed = out[rows, cols][band].astype(int)
    assert (mixed >= photo[rows, cols][band]).all()  # between photo and white
    rect = paste_face(photo, c, white, feather=0.0, shape="rect")
    assert (rect[rows, cols] == 255).all()


def test_auto_backend_falls_back_to_opencv_when_the_mediapipe_model_is_unavailable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from speechface.core.errors import ModelError

    pytest.importorskip("mediapipe")

    def no_model(*args, **kwargs):
        raise ModelError("FaceLandmarker model not found (offline)")

    monkeypatch.setattr(face_mod, "_detect_mediapipe", no_model)
    monkeypatch.setattr(face_mod, "_detect_opencv", lambda img, n: [FaceBox(1, 2, 30, 40,
                                                                            backend="opencv")])
    with pytest.warns(UserWarning, match="using OpenCV"):
        assert detect_faces(np.zeros((64, 64, 3), np.uint8))[0].backend == "opencv"
    with pytest.raises(ModelError, match="offline"):
        detect_faces(np.zeros((64, 64, 3), np.uint8), backend="mediapipe")

    def no_cv(*args):
        raise ImportError("no cv2")

    monkeypatch.setattr(face_mod, "_detect_opencv", no_cv)
    with pytest.raises(ModelError, match="offline"):
        detect_faces(np.zeros((64, 64, 3), np.uint8))
