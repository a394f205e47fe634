"""The animation renderer: expression response, stability, sharpness, untouched pixels, speed.

    python benchmarks/bench_render.py [--translator NAME] [--sections expression quality speed]
        [--threads 2] [--busy]

Photos: ``$SPEECHFACE_SHARED/data/faces/*.jpg`` and ``examples/data/astronaut.jpg`` (none of
them used to fit or calibrate any model). MediaPipe FaceLandmarker measures the outputs.

- **expression**: for each expressive AU (AU01, 02, 04, 06, 12, 15, 45, 26) set to 3 with the
  others 0, the face crop is rendered and MediaPipe's blendshapes are read; printed per AU:
  the change of every AU's matching blendshapes over the AU-0 render (mean over photos), the
  smallest rise of its own over the photos, and the largest change of the other half of the
  face's blendshapes (cross-talk). The jaw row parts the lips too (AU25 = AU26 = 3): under the
  AU proxy AU26 alone is a jaw drop with closed lips (also printed).
- **quality**: the example speech (``examples/data/speech.wav``) animated onto each photo with
  ``animate``'s defaults: eye-corner jitter (RMS frame-to-frame displacement of the four eye
  corners, MediaPipe video mode, in % of the inter-ocular distance; also their standard
  deviation over time; the jitter of the unchanged photo repeated is MediaPipe's own noise), sharpness (variance of the
  Laplacian inside the face box, frames / photo) and the number of pixels outside the face
  crop's box that differ from the photo in any frame.
- **speed**: end-to-end ``animate`` (speech model + renderer + composing every full frame) on
  the 512 px astronaut photo with 8.8 s of speech, frames per second of wall time (best of 3)
  and frames per CPU-second of this process (all its threads: what a quiet machine would
  give, also when other work shares the cores); with ``--busy`` also while a neighbour process
  keeps one core busy. Peak memory (RSS) is printed.
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
SPEECH = REPO / "examples" / "data" / "speech.wav"
AU_NAMES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14",
            "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")
GROUPS = {"AU01": ["browInnerUp"], "AU02": ["browOuterUpLeft", "browOuterUpRight"],
          "AU04": ["browDownLeft", "browDownRight"],
          "AU06": ["cheekSquintLeft", "cheekSquintRight"],
          "AU12": ["mouthSmileLeft", "mouthSmileRight"],
          "AU15": ["mouthFrownLeft", "mouthFrownRight"],
          "AU45": ["eyeBlinkLeft", "eyeBlinkRight"], "AU26": ["jawOpen"]}
#: Conditions per row: the AU at 3, others 0; the jaw row also parts the lips (AU25 = 3): under
#: the AU proxy AU26 alone is a jaw drop with the lips held closed (mouthClose), also printed.
ROWS = {"AU01": {"AU01": 3}, "AU02": {"AU02": 3}, "AU04": {"AU04": 3}, "AU06": {"AU06": 3},
        "AU12": {"AU12": 3}, "AU15": {"AU15": 3}, "AU45": {"AU45": 3},
        "AU25+26": {"AU25": 3, "AU26": 3}, "AU26 alone": {"AU26": 3}}
UPPER = {"AU01", "AU02", "AU04", "AU06", "AU45"}
#: MediaPipe mesh points of the four eye corners (outer left, inner left, inner right, outer
#: right): the jitter is theirs, and the inter-ocular distance is outer to outer.
EYE_CORNERS = [33, 133, 362, 263]


def photos() -> list[str]:
    return sorted(glob.glob(str(SHARED / "data" / "faces" / "*.jpg"))) + \
        [str(REPO / "examples" / "data" / "astronaut.jpg")]


def load_translator(name: str | None):
    from speechface.render.translators import Translator

    return Translator.from_pretrained(name) if name else Translator.from_pretrained()


def expression(tr) -> None:
    from speechface.render.face import crop_face, find_face, load_image
    from speechface.teachers.mediapipe import BLENDSHAPE_NAMES, MediaPipeTeacher

    idx = {k: [BLENDSHAPE_NAMES.index(n) for n in v] for k, v in GROUPS.items()}
    margin = float(tr.info.get("crop_margin", 0.35))
    shift = float(tr.info.get("crop_shift", 0.0))
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in ROWS}
    with MediaPipeTeacher(running_mode="image") as t:
        for p in photos():
            photo = load_image(p)
            crop = crop_face(photo, find_face(photo), margin=margin, shift=shift).image
            conds = [np.zeros(17, np.float32)]
            for spec in ROWS.values():
                c = np.zeros(17, np.float32)
                for au, v in spec.items():
                    c[AU_NAMES.index(au)] = v
                conds.append(c)
            outs = tr.translate(crop, np.stack(conds))
            reads, shapes = [], []
            for o in outs:
                obs = t.observe(np.ascontiguousarray(o))
                reads.append(obs.blendshapes if obs.found else np.full(52, np.nan))
                shapes.append(obs.landmarks[:, :2] * o.shape[1::-1] if obs.found
                              else np.full((478, 2), np.nan))
            for i, row in enumerate(ROWS, 1):
                rows[row].append({k: float(np.mean(reads[i][v] - reads[0][v]))
                                  for k, v in idx.items()})
                rows[row][-1].update(lid_cheek_rise(shapes[0], shapes[i]))
    print("\n== expression response (AU = 3, others 0; MediaPipe blendshape change over the "
          "AU-0 render; mean over photos)")
    print(f"{'condition':11s} " + " ".join(f"{g:>6s}" for g in GROUPS) +
          f" {'own min':>8s} {'other region max|d|':>19s}")
    for row, per_photo in rows.items():
        own = "AU26" if row.startswith(("AU25+26", "AU26")) else row
        mean = {g: np.mean([d[g] for d in per_photo]) for g in GROUPS}
        low = min(d[own] for d in per_photo)
        region = UPPER if own in UPPER else set(GROUPS) - UPPER
        cross = max(abs(d[g]) for d in per_photo for g in GROUPS if g not in region)
        print(f"{row:11s} " + " ".join(f"{mean[g]:+6.2f}" for g in GROUPS) +
              f" {low:+8.3f} {cross:19.3f}")
    print("columns: the matching blendshapes of each AU (mean of left/right); own min = the "
          "smallest rise of the row's own column over the photos; other region = the columns "
          "of the other half of the face (brows/lids/cheeks vs mouth/jaw)")
    print("\n== geometry read by MediaPipe (rise over the AU-0 render, % of the inter-ocular "
          "distance; mean over photos, min in brackets): the cheek raiser lifts the lower lids and "
          "cheeks, which MediaPipe's cheekSquint blendshape hardly reads")
    for row, per_photo in rows.items():
        cells = " ".join(f"{g} {np.mean([d[g] for d in per_photo]):+5.2f} "
                         f"({min(d[g] for d in per_photo):+5.2f})" for g in ("lower lid", "cheek"))
        print(f"{row:11s} {cells}")


#: MediaPipe mesh points: the middle of each lower lid, and a point on each cheek below the eye.
LOWER_LID = (145, 374)
CHEEK = (50, 280)


def lid_cheek_rise(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Upward motion of the lower lids and cheeks from ``before`` to ``after`` (``(478, 2)``
    pixel landmarks), in % of the inter-ocular distance of ``before`` (outer eye corners, as for
    the jitter; image y grows down)."""
    iod = float(np.linalg.norm(before[EYE_CORNERS[0]] - before[EYE_CORNERS[-1]]))
    rise = lambda pts: float(np.mean(before[list(pts), 1] - after[list(pts), 1]) / iod * 100)  # noqa: E731
    return {"lower lid": rise(LOWER_LID), "cheek": rise(CHEEK)}


def quality(tr) -> None:
    import cv2

    from speechface import animate
    from speechface.render.face import load_image
    from speechface.teachers.mediapipe import MediaPipeTeacher

    print("\n== stability and quality (example speech, animate defaults)")
    print(f"{'photo':14s} {'jitter %IOD':>11s} {'std %IOD':>9s} {'photo noise':>11s} "
          f"{'sharpness':>9s} {'changed outside crop':>20s}")
    for p in photos():
        photo = load_image(p)
        anim = animate(SPEECH, photo, translator=tr, progress=False)
        h, w = photo.shape[:2]
        x0, y0, x1, y1 = (int(v) for v in anim.face.xyxy)
        side = int(max(x1 - x0, y1 - y0) * (1 + 2 * anim.info["margin"]))
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        bx0, by0 = max(0, cx - side // 2 - 1), max(0, cy - side // 2 - 1)
        bx1, by1 = min(w, cx + side // 2 + 2), min(h, cy + side // 2 + 2)

        def corner_track(frames, by0=by0, by1=by1, bx0=bx0, bx1=bx1) -> np.ndarray:
            pts = []
            with MediaPipeTeacher(running_mode="video") as t:
                for k, f in enumerate(frames):
                    c = np.ascontiguousarray(f[by0:by1, bx0:bx1])
                    obs = t.observe(c, 1000 + 40 * k)
                    pts.append(obs.landmarks[EYE_CORNERS, :2] * [c.shape[1], c.shape[0]]
                               if obs.found else np.full((4, 2), np.nan))
            return np.array(pts)

        frames = list(anim.iter_frames())
        tr_pts = corner_track(frames)
        still = corner_track([photo] * len(frames))
        iod = np.linalg.norm(np.nanmedian(still[:, 0] - still[:, 3], axis=0))

        def step(pts: np.ndarray, iod: float = iod) -> float:   # RMS frame-to-frame, % IOD
            d = np.linalg.norm(np.diff(pts, axis=0), axis=-1)
            return float(np.sqrt(np.nanmean(d ** 2))) / iod * 100

        jitter = step(tr_pts)
        spread = float(np.nanmean(np.nanstd(tr_pts, axis=0))) / iod * 100
        noise = step(still)
        grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        ref = cv2.Laplacian(grey[y0:y1, x0:x1], cv2.CV_64F).var()
        sharp = np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1],
                                       cv2.CV_64F).var() for f in frames[::5]]) / ref
        outside = np.ones((h, w), bool)
        outside[by0:by1, bx0:bx1] = False
        changed = 0
        for f in frames:
            changed += int((f[outside] != photo[outside]).any(-1).sum())
        print(f"{Path(p).name:14s} {jitter:11.3f} {spread:9.3f} {noise:11.3f} {sharp:9.2f} "
              f"{changed:20d}")


def _burn(stop) -> None:  # a busy neighbour: one core of matrix products
    os.environ["OMP_NUM_THREADS"] = "1"
    a = np.random.rand(300, 300)
    while not stop.is_set():
        a = a @ a
        a /= np.abs(a).max()


def speed(tr, threads: int, busy: bool, mouth_sync: bool = True) -> None:
    import torch

    from speechface import animate
    from speechface.audio import load_audio

    torch.set_num_threads(threads)
    wave = load_audio(SPEECH).numpy()
    photo = str(REPO / "examples" / "data" / "astronaut.jpg")

    def once() -> tuple[float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        anim = animate(wave, photo, translator=tr, sample_rate=16000, progress=False,
                       mouth_sync=mouth_sync)
        n = 0
        for _ in anim.iter_frames():
            n += 1
        return time.perf_counter() - t0, time.process_time() - c0, n

    once()  # warm up (model loading, MediaPipe graph)
    modes = [("quiet", False)] + ([("busy neighbour", True)] if busy else [])
    print(f"\n== speed: animate end to end, 512x512 photo, {len(wave) / 16000:.1f} s speech, "
          f"{threads} torch threads, mouth sync {'on' if mouth_sync else 'off'}")
    for label, with_busy in modes:
        stop = mp.Event()
        proc = None
        if with_busy:
            proc = mp.Process(target=_burn, args=(stop,), daemon=True)
            proc.start()
            time.sleep(1.0)
        try:
            runs = [once() for _ in range(3)]
        finally:
            if proc is not None:
                stop.set()
                proc.join(5)
        wall, cpu, n = min(runs)
        print(f"{label:15s} {n / wall:6.1f} frames/s wall ({n} frames in {wall:.2f} s), "
              f"{n / cpu:6.1f} frames per CPU-second (all threads)  load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--translator", default=None)
    p.add_argument("--no-mouth-sync", action="store_true",
                   help="speed: animate(mouth_sync=False) (default: on, as animate)")
    p.add_argument("--sections", nargs="+", default=["expression", "quality", "speed"],
                   choices=["expression", "quality", "speed"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--busy", action="store_true", help="also measure with a busy neighbour")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    tr = load_translator(args.translator)
    print(f"translator {tr.name}")
    if "expression" in args.sections:
        expression(tr)
    if "quality" in args.sections:
        quality(tr)
    if "speed" in args.sections:
        speed(tr, args.threads, args.busy, not args.no_mouth_sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
