"""speechface.render.translators: GANimation generator/critic, the Translator wrapper, face labelling."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import EXAMPLES, need_shared
from speechface.core.errors import DataError, ImageError, ModelError, UnknownNameError
from speechface.core.registry import TRANSLATORS
from speechface.data.faces import FaceFolder
from speechface.data.openface import read_au_table
from speechface.render.translators import (
    GANimationCritic,
    GANimationGenerator,
    ImageTranslator,
    Translator,
    create_translator,
    list_translators,
)
from speechface.spaces import AU17, EMOTION8

TINY = {"image_size": 32, "conv_dim": 8, "repeat_num": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_translator(space: str = "au17") -> Translator:
    return Translator.create("ganimation", space=space, **TINY)


# --------------------------------------------------------------------------- networks
def test_registered():
    assert "ganimation" in list_translators()
    assert TRANSLATORS.get("ganimation") is GANimationGenerator
    assert isinstance(create_translator("ganimation", **TINY), ImageTranslator)


@pytest.mark.parametrize("space", ["au17", "emotion8"])
def test_generator_shapes_range_and_gradients(space):
    g = GANimationGenerator(space=space, **TINY)
    d = g.cond_dim
    assert d == (17 if space == "au17" else 8)
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    cond = torch.rand(2, d) * (5 if space == "au17" else 1)
    out, att = g(img, cond)
    assert out.shape == (2, 3, 32, 32) and att.shape == (2, 1, 32, 32)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    assert ((att > 0) & (att < 1)).all()
    colour, att2 = g.forward_parts(img, cond)
    assert torch.allclose(out, att2 * img + (1 - att2) * colour)
    (out.mean() + att.mean()).backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_generator_depends_on_condition():
    g = GANimationGenerator(**TINY).eval()
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    a, _ = g(img, torch.zeros(1, 17))
    b, _ = g(img, torch.full((1, 17), 5.0))
    assert (a - b).abs().max() > 1e-4


def test_critic_shapes_depth_and_gradients():
    d = GANimationCritic(image_size=32, conv_dim=8)
    assert d.hparams["repeat_num"] == 4  # log2(32) - 1: a 2x2 final map
    img = (torch.rand(3, 3, 32, 32) * 2 - 1).requires_grad_(True)
    score, cond = d(img)
    assert score.shape == (3, 1, 2, 2) and cond.shape == (3, 17)
    (score.mean() + cond.mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert img.grad is not None
    assert GANimationCritic(image_size=64, conv_dim=4).hparams["repeat_num"] == 5
    assert GANimationCritic("emotion8", image_size=32, conv_dim=4)(torch.zeros(1, 3, 32, 32))[1].shape == (1, 8)


def test_reference_topology():
    """The paper's sizes: 128 px, 64 -> 256 channels, 6 residual blocks; critic 64 -> 2048."""
    g = GANimationGenerator()
    convs = [m for m in g.main if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 3 + 17 and convs[0].out_channels == 64 and convs[0].kernel_size == (7, 7)
    assert [(c.out_channels, c.stride) for c in convs[1:3]] == [(128, (2, 2)), (256, (2, 2))]
    assert sum(type(m).__name__ == "ResidualBlock" for m in g.main) == 6
    ups = [m for m in g.main if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [128, 64]
    assert g.colour[0].kernel_size == (7, 7) and isinstance(g.colour[1], torch.nn.Tanh)
    assert g.attention[0].out_channels == 1 and isinstance(g.attention[1], torch.nn.Sigmoid)
    d = GANimationCritic()
    assert d.hparams["repeat_num"] == 6 and d.score.in_channels == 2048
    assert d.regress.kernel_size == (2, 2) and d.regress.out_channels == 17
    assert all(isinstance(m, (torch.nn.Conv2d, torch.nn.LeakyReLU)) for m in d.main)


def test_condition_normalisation_and_hparams():
    g = GANimationGenerator(**TINY)
    assert g.hparams == {"space": "au17", **TINY}
    assert torch.allclose(g.normalize_condition(torch.tensor([[5.0, 2.5]] * 1).expand(1, 2)),
                          torch.tensor([[1.0, 0.5]]))
    e = GANimationGenerator(space="emotion8", **TINY)
    p = torch.softmax(torch.randn(2, 8), -1)
    assert torch.allclose(e.normalize_condition(p), p)


def test_bad_network_arguments():
    with pytest.raises(UnknownNameError, match="emotion2"):
        GANimationGenerator(space="emotion2", **TINY)
    with pytest.raises(ValueError, match="divisible by 4"):
        GANimationGenerator(image_size=30, conv_dim=8, repeat_num=1)
    with pytest.raises(UnknownNameError, match="ganimation"):
        Translator.create("nope")
    g = GANimationGenerator(**TINY)
    with pytest.raises(ValueError, match="cond must be"):
        g(torch.zeros(1, 3, 32, 32), torch.zeros(1, 8))
    with pytest.raises(ValueError, match="img must be"):
        g(torch.zeros(1, 1, 32, 32), torch.zeros(1, 17))


# --------------------------------------------------------------------------- Translator
def test_save_load_round_trip(tmp_path):
    tr = tiny_translator()
    tr.info = {"data": "unit test"}
    folder = tr.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["kind"] == "translator" and cfg["architecture"] == "ganimation"
    assert cfg["model_args"] == TINY and cfg["labels"] == list(AU17.labels)
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    back = Translator.from_pretrained(folder)
    faces = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    cond = np.random.default_rng(1).uniform(0, 5, (3, 17))
    assert np.array_equal(tr.translate(faces, cond), back.translate(faces, cond))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.rand(2, 17) * 5
    with torch.no_grad():
        assert torch.equal(tr.eval()(x, c)[0], back(x, c)[0])
    assert back.info == {"data": "unit test"}


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="architecture, not trained weights"):
        Translator.from_pretrained("ganimation")
    folder = tiny_translator().save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["kind"] = "estimator"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="estimator"):
        Translator.from_pretrained(folder)
    cfg["kind"], cfg["model_args"]["conv_dim"] = "translator", 16
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="do not fit"):
        Translator.from_pretrained(folder)
    with pytest.raises(ModelError):
        Translator.from_pretrained(tmp_path / "missing")


def test_translate_shapes_broadcast_and_inputs():
    tr = tiny_translator()
    face = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    assert tr.translate(face, np.zeros(17)).shape == (50, 60, 3)  # one face, one condition
    frames = tr.translate(face, np.random.rand(5, 17) * 5)  # one face, five conditions
    assert frames.shape == (5, 50, 60, 3) and frames.dtype == np.uint8
    many = tr.translate(np.stack([face] * 4), np.zeros((1, 17)), batch_size=3)
    assert many.shape == (4, 50, 60, 3)
    t_uint8 = tr.translate(torch.from_numpy(face)[None], torch.zeros(1, 17))
    t_float = tr.translate(torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255,
                           torch.zeros(1, 17))
    assert np.abs(t_uint8.astype(int) - t_float.astype(int)).max() <= 1
    imgs, att = tr.translate(face[None], np.zeros((2, 17)), return_attention=True)
    assert imgs.shape == (2, 50, 60, 3) and att.shape == (2, 50, 60)
    assert ((att >= 0) & (att <= 1)).all()


def test_translate_composes_at_full_resolution(monkeypatch):
    """Where attention is 1 the original pixels come back untouched (no down/up-sampling)."""
    tr = tiny_translator()

    def keep_all(img, cond):
        return torch.full_like(img, -1.0), torch.ones_like(img[:, :1])

    monkeypatch.setattr(tr.network, "forward_parts", keep_all)
    face = np.random.default_rng(0).integers(0, 256, (2, 70, 90, 3), dtype=np.uint8)
    assert np.array_equal(tr.translate(face, np.zeros((2, 17))), face)


def test_translate_bad_inputs():
    tr = tiny_translator()
    face = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ImageError, match="uint8"):
        tr.translate(face.astype(np.float32), np.zeros(17))
    with pytest.raises(ImageError, match="RGB"):
        tr.translate(np.zeros((2, 32, 32), np.uint8), np.zeros(17))
    with pytest.raises(ImageError):
        tr.translate("face.jpg", np.zeros(17))
    with pytest.raises(ValueError, match=r"\(N, 17\)"):
        tr.translate(face, np.zeros(8))
    with pytest.raises(ValueError, match="NaN"):
        tr.translate(face, np.full(17, np.nan))
    with pytest.raises(ValueError, match="3 faces but 2 conditions"):
        tr.translate(np.zeros((3, 32, 32, 3), np.uint8), np.zeros((2, 17)))
    with pytest.raises(ImageError, match="NaN"):
        tr.translate(torch.full((1, 3, 32, 32), float("nan")), np.zeros(17))
    with pytest.raises(ValueError, match="nothing to translate"):
        tr.translate(np.zeros((0, 32, 32, 3), np.uint8), np.zeros((1, 17)))


def test_packaged_default_if_present():
    from speechface.pretrained import list_pretrained, packaged_dir

    names = list_pretrained("translator")
    if not names:
        pytest.skip("no packaged translator in this checkout")
    for name in names:
        assert (packaged_dir(name) / "model.safetensors").stat().st_size < 4 * 2**20
        assert (packaged_dir(name) / "README.md").is_file()
    from speechface.pretrained import DEFAULT_MODELS

    tr = Translator.from_pretrained()
    assert tr.pretrained and tr.space.name == "au17" and tr.network.arch == "mesh_warp"
    pytest.importorskip("mediapipe")
    from speechface.render.face import crop_face, find_face, load_image

    photo = load_image(EXAMPLES / "astronaut.jpg")
    crop = crop_face(photo, find_face(photo)).image
    assert tr.translate(crop, np.zeros(17)).shape == crop.shape    # at the crop's own size
    gan = Translator.from_pretrained(DEFAULT_MODELS["translator_ganimation"])
    assert gan.pretrained and gan.network.arch == "ganimation"     # the paper's, selectable
    out = gan.translate(np.full((gan.image_size, gan.image_size, 3), 128, np.uint8), np.zeros(17))
    assert out.shape == (gan.image_size, gan.image_size, 3)


# --------------------------------------------------------------------------- face labelling
def test_ganimation_sample_loads_through_facefolder():
    root = need_shared("data", "ganimation_sample")
    ds = FaceFolder(root / "imgs", au_csv=root / "aus_openface.csv", strict=True)
    assert len(ds) == 4 and ds.aus.shape == (4, 17)
    names, aus = read_au_table(root / "aus_openface.csv")
    assert np.allclose(np.sort(aus, 0), np.sort(ds.aus, 0))
    img, au = ds[0]
    frame = tiny_translator().translate(np.asarray(img)[None], au[None])
    assert frame.shape == (1, 128, 128, 3)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    lfw = need_shared("data", "faces128", "lfw")
    from PIL import Image

    from speechface.data.prepare_faces import prepare_faces

    src = tmp_path_factory.mktemp("faces")
    for name in ("AJ_Cook_0001.jpg", "Aaron_Eckhart_0001.jpg"):
        Image.open(lfw / name).save(src / name)
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(src / "Blank_Wall_0001.png")
    out = tmp_path_factory.mktemp("out") / "labels.csv"
    emotions = np.tile(np.eye(8, dtype=np.float32)[1], (1, 1))
    info = prepare_faces(src, out, progress=False,
                         expression=lambda faces: np.repeat(emotions, len(faces), 0))
    return src, out, info


def test_prepare_faces_real_images(labelled):
    src, out, info = labelled
    assert info["n_images"] == 3 and info["n_labelled"] == 2
    assert info["no_face"] == ["Blank_Wall_0001.png"]
    with open(out, newline="") as f:
        header = next(csv.reader(f))
    assert header == ["image", *AU17.columns, *EMOTION8.columns]
    with pytest.warns(UserWarning, match="1 of 3 images"):
        ds = FaceFolder(src, au_csv=out)
    assert len(ds) == 2 and ds.aus.shape == (2, 17)
    assert (ds.aus >= 0).all() and (ds.aus <= 5).all() and ds.aus.sum() > 0
    with pytest.warns(UserWarning, match="no row"):
        emo = FaceFolder(src, au_csv=out, space="emotion8")
    assert np.allclose(emo.aus[:, 1], 1.0)
    assert not list(out.parent.glob(".*.tmp"))  # atomic: no temporary left


def test_prepare_faces_errors(tmp_path):
    from speechface.cli.prepare import build_prepare_faces_parser
    from speechface.data.prepare_faces import prepare_faces

    with pytest.raises(DataError, match="not found"):
        prepare_faces(tmp_path / "nope", tmp_path / "x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        prepare_faces(tmp_path / "empty", tmp_path / "x.csv")
    (tmp_path / "one").mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "one" / "a.png")
    with pytest.raises(ModelError, match="unknown face teacher"):
        prepare_faces(tmp_path / "one", tmp_path / "x.csv", teacher="openface")
    assert not (tmp_path / "x.csv").exists()

    import argparse

    parser = argparse.ArgumentParser()
    build_prepare_faces_parser(parser.add_subparsers())
    args = parser.parse_args(["faces", "imgs", "-o", "aus.csv", "--quiet"])
    assert args.image_dir == "imgs" and args.output == "aus.csv" and args.quiet


def test_prepare_faces_with_teacher_object_and_expression_recognizer(tmp_path):
    """Any object with observe() is a teacher; an ExpressionRecognizer adds emotion8 columns."""
    expression = pytest.importorskip("speechface.teachers.expression")
    from PIL import Image

    from speechface.data.prepare_faces import prepare_faces
    from speechface.teachers.mediapipe import FaceObservation

    class StubTeacher:
        def observe(self, image):
            bs = np.zeros(52, np.float32)
            bs[25] = image.mean() / 255  # jawOpen follows brightness
            return FaceObservation(True, bs, np.zeros((478, 3), np.float32),
                                   np.array([0, 0, 8, 8], np.float32))

    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(tmp_path / "imgs" / "A_0001.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "sub" / "B_0001.jpg")
    fer = expression.ExpressionRecognizer.create()
    info = prepare_faces(tmp_path / "imgs", tmp_path / "l.csv", teacher=StubTeacher(),
                         expression=fer, recursive=True, progress=False)
    assert info["n_labelled"] == 2
    names, aus = read_au_table(tmp_path / "l.csv")
    assert names == ["A_0001.png", "sub/B_0001.jpg"]
    assert aus[0, AU17.index("AU26")] == pytest.approx(5.0) and aus[1].sum() == 0
    emo = FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "l.csv", space="emotion8", recursive=True)
    assert np.allclose(emo.aus.sum(1), 1, atol=1e-3)
