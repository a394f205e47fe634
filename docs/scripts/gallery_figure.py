"""Makes the animation gallery of docs/gallery.md with the packaged default models:

- docs/img/gallery_speech.jpg: the example speech animated onto each photo (face region of
  six frames, with the photo on the left);
- docs/img/gallery_expressions.jpg: each expressive AU at 3 (others 0) on each photo;
- docs/img/gallery_old_default.jpg: the same speech frames with the previous default
  (GANimation + the landmark_warp lip-sync stage), for comparison.

    python docs/scripts/gallery_figure.py

Photos: $SPEECHFACE_SHARED/data/faces/*.jpg (public-domain portraits) and
examples/data/astronaut.jpg.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import speechface
from speechface.pretrained import DEFAULT_MODELS
from speechface.render.face import crop_face, find_face, load_image
from speechface.render.translators import Translator

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
SPEECH = REPO / "examples" / "data" / "speech.wav"
TILE = 176
AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
       "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")


def photos() -> list[str]:
    return sorted(glob.glob(str(SHARED / "data" / "faces" / "*.jpg"))) + \
        [str(REPO / "examples" / "data" / "astronaut.jpg")]


def face_window(anim_face, shape) -> tuple[slice, slice]:
    x0, y0, x1, y1 = anim_face.xyxy
    side = 1.25 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = shape[:2]
    a, b = int(max(0, cy - side / 2)), int(min(h, cy + side / 2))
    c, d = int(max(0, cx - side / 2)), int(min(w, cx + side / 2))
    return slice(a, b), slice(c, d)


def tile(img: np.ndarray, label: str | None = None) -> Image.Image:
    im = Image.fromarray(img).resize((TILE, TILE), Image.LANCZOS)
    if label:
        d = ImageDraw.Draw(im)
        d.rectangle((0, 0, 8 + 7 * len(label), 14), fill=(0, 0, 0))
        d.text((4, 1), label, fill=(255, 255, 255))
    return im


def grid(rows: list[list[Image.Image]], out: Path) -> None:
    w = max(len(r) for r in rows) * TILE
    canvas = Image.new("RGB", (w, len(rows) * TILE), (255, 255, 255))
    for i, r in enumerate(rows):
        for j, t in enumerate(r):
            canvas.paste(t, (j * TILE, i * TILE))
    canvas.save(out, quality=85, optimize=True)
    print("wrote", out)


def speech_rows(translator=None, lipsync=None) -> list[list[Image.Image]]:
    rows = []
    for p in photos():
        photo = load_image(p)
        kw = {} if translator is None else {"translator": translator, "lipsync": lipsync,
                                            "mouth_sync": False}
        anim = speechface.animate(SPEECH, photo, progress=False, **kw)
        win = face_window(anim.face, photo.shape)
        picks = [40, 62, 95, 128, 150, 183]
        row = [tile(photo[win], "photo")]
        row += [tile(anim.frame(k)[win], f"{k / 25:.2f} s") for k in picks]
        rows.append(row)
    return rows


def main() -> None:
    out = REPO / "docs" / "img"
    grid(speech_rows(), out / "gallery_speech.jpg")
    tr = Translator.from_pretrained()
    rows = []
    sweep = [("AU01", {"AU01": 3}), ("AU02", {"AU02": 3}), ("AU04", {"AU04": 3}),
             ("AU06", {"AU06": 3}), ("AU12", {"AU12": 3}), ("AU15", {"AU15": 3}),
             ("AU45", {"AU45": 3}), ("AU25+26", {"AU25": 3, "AU26": 3})]
    for p in photos():
        photo = load_image(p)
        box = find_face(photo)
        crop = crop_face(photo, box, margin=0.35)
        conds = []
        for _, spec in sweep:
            c = np.zeros(17, np.float32)
            for au, v in spec.items():
                c[AUS.index(au)] = v
            conds.append(c)
        outs = tr.translate(crop.image, np.stack(conds))
        s = crop.image.shape[0]
        win = (slice(int(0.15 * s), int(0.85 * s)), slice(int(0.15 * s), int(0.85 * s)))
        rows.append([tile(crop.image[win], "photo")] +
                    [tile(o[win], name) for o, (name, _) in zip(outs, sweep, strict=True)])
    grid(rows, out / "gallery_expressions.jpg")
    gan = Translator.from_pretrained(DEFAULT_MODELS["translator_ganimation"])
    grid(speech_rows(gan, True), out / "gallery_old_default.jpg")


if __name__ == "__main__":
    main()
