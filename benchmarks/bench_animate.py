"""Face translation speed for animation: frames per second at 128x128, fp32 eager vs fast paths.

    python benchmarks/bench_animate.py [--threads 2] [--frames 32] [--compile] [--tolerance 0.1 0.2]

Models: ``Translator.create("ganimation", image_size=128)`` (the reference GANimation
generator: conv_dim 64, 6 residual blocks; random weights, speed does not depend on them) and
the packaged default translator (``Translator.from_pretrained()``) when the library ships one.

For each: GFLOP per frame (``torch.utils.flop_counter.FlopCounterMode``, one 128x128 frame;
a multiply-add counts as 2 FLOP), then frames/s of ``translate`` on one face crop (the
astronaut example) with ``--frames`` conditions, for

- fp32 eager, one frame per call, and batches of 16 (``Translator.translate`` as it is);
- :mod:`speechface.render.fastpath` options: channels-last, bf16 autocast, both, and both plus frame
  reuse (``skip_tolerance``) on a realistic condition track (the packaged estimator's
  predictions on the example speech, smoothed as ``animate(smoothing=1.5)`` does; a synthetic
  smooth track when no estimator is packaged); ``--compile`` adds torch.compile.

Every fast path is compared with fp32 eager on the same weights and conditions: the maximum
absolute pixel difference in uint8 units (and the mean).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from speechface.core.errors import ModelError
from speechface.render.face import load_image
from speechface.render.fastpath import FastOptions, bf16_supported, translate
from speechface.render.translators import Translator
from speechface.spaces.transforms import smooth_conditions

REPO = Path(__file__).resolve().parents[1]


def gflop_per_frame(tr: Translator) -> float:
    """FLOP of one network forward pass on one ``image_size`` frame, in GFLOP."""
    s = tr.image_size
    img = torch.zeros(1, 3, s, s)
    cond = torch.zeros(1, tr.space.dim)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        tr.network.forward_parts(img, cond)
    return counter.get_total_flops() / 1e9


def conditions(n: int, space: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """``n`` conditions of ``space`` and where they come from: the packaged estimator's
    predictions on the example speech, smoothed (sigma 1.5 frames) as ``animate`` would use
    them; else a synthetic smooth track (random targets every 5 frames, smoothed)."""
    from speechface.speech import estimator_class

    try:
        est = estimator_class(space).from_pretrained()
    except ModelError:
        rng = np.random.default_rng(seed)
        dim = 17 if space == "au17" else 8
        raw = np.repeat(rng.uniform(0, 3, (n // 5 + 1, dim)), 5, axis=0)[:n]
        c = smooth_conditions(raw.astype(np.float32), 2.0)
        if space != "au17":
            c = np.exp(c) / np.exp(c).sum(1, keepdims=True)
        return c, "synthetic smooth track"
    pred = est.predict(REPO / "examples" / "data" / "speech.wav")
    vals = smooth_conditions(pred.values, 1.5)
    vals = np.concatenate([vals] * (n // len(vals) + 1))[:n]
    return vals, f"{est.name} on examples/data/speech.wav, smoothed 1.5 frames"


def run(tr: Translator, face: np.ndarray, cond: np.ndarray, opts: FastOptions | None,
        repeat: int) -> tuple[float, np.ndarray]:
    """Best seconds over ``repeat`` runs (after a warm-up) and the frames of the last run."""
    def once() -> np.ndarray:
        if opts is None:  # the plain library call, one frame per call
            return np.stack([tr.translate(face, c[None]) for c in cond])
        return translate(tr, face, cond, opts)

    out = once()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = once()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench(name: str, tr: Translator, face: np.ndarray, args: argparse.Namespace) -> None:
    """Print GFLOP/frame and the fps / pixel difference of every variant for one translator."""
    tr.eval()
    g = gflop_per_frame(tr)
    cond, origin = conditions(args.frames, tr.space.name)
    print(f"\n{name}: {tr.network.num_parameters():,} parameters, {g:.2f} GFLOP per "
          f"{tr.image_size}x{tr.image_size} frame; {args.frames} conditions: {origin}")
    variants: list[tuple[str, FastOptions | None]] = [
        ("fp32 eager, 1 frame/call", None),
        ("fp32 eager, batch 16", FastOptions(batch_size=16)),
        ("channels_last, batch 16", FastOptions(channels_last=True)),
        ("bf16 autocast, batch 16", FastOptions(bf16=True)),
        ("bf16 + channels_last", FastOptions(bf16=True, channels_last=True)),
    ]
    for tol in args.tolerance:
        variants.append((f"fp32 + reuse tol {tol:g}", FastOptions(skip_tolerance=tol)))
        variants.append((f"bf16 + cl + reuse tol {tol:g}",
                         FastOptions(bf16=True, channels_last=True, skip_tolerance=tol)))
    if args.compile:
        variants.append(("torch.compile + cl, fp32", FastOptions(channels_last=True, compile=True)))
        variants.append(("torch.compile + cl + bf16",
                         FastOptions(channels_last=True, bf16=True, compile=True)))
    ref = None
    base = None
    print(f"{'variant':34s} {'frames/s':>9s} {'speed-up':>9s} {'GFLOP/s':>8s} "
          f"{'max|diff|':>9s} {'mean|diff|':>10s}")
    for label, opts in variants:
        if opts is not None and opts.compile:
            t = time.perf_counter()
            translate(tr, face, cond[:16], opts)
            print(f"  (compilation {time.perf_counter() - t:.1f} s)")
        try:
            sec, out = run(tr, face, cond, opts, args.repeat)
        except Exception as e:  # noqa: BLE001 - e.g. compile without a working compiler
            print(f"{label:34s} failed: {type(e).__name__}: {str(e)[:120]}")
            continue
        fps = args.frames / sec
        if ref is None:
            ref, base = out.astype(np.int16), fps
        diff = np.abs(out.astype(np.int16) - ref)
        computed = args.frames
        if opts is not None and opts.skip_tolerance > 0:
            from speechface.render.fastpath import keyframes

            computed = len(keyframes(cond, opts.skip_tolerance)[0])
        note = f"  ({computed}/{args.frames} frames computed)" if computed < args.frames else ""
        print(f"{label:34s} {fps:9.2f} {fps / base:8.2f}x {g * fps * computed / args.frames:8.1f} "
              f"{int(diff.max()):9d} {diff.mean():10.3f}{note}")


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tolerance", type=float, nargs="+", default=[0.1, 0.2],
                    help="condition tolerances for frame reuse (space units: AU 0-5)")
    ap.add_argument("--compile", action="store_true", help="also try torch.compile (slow start)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"translate speed, {args.threads} torch threads, {os.cpu_count()} CPUs, load average "
          f"{load:.1f}, torch {torch.__version__}, native bf16: {bf16_supported()}, "
          f"C++ compiler: {shutil.which('c++') or shutil.which('g++') or 'none'}")
    from PIL import Image

    face = np.asarray(Image.fromarray(load_image(REPO / "examples" / "data" / "astronaut.jpg"))
                      .crop((140, 20, 340, 220)).resize((128, 128), Image.BICUBIC))
    torch.manual_seed(0)
    bench("ganimation (reference 128 px, conv_dim 64, 6 res blocks, random weights)",
          Translator.create("ganimation", image_size=128), face, args)
    try:
        packaged = Translator.from_pretrained()
    except ModelError as e:
        print(f"\npackaged default translator: skipped ({e})")
    else:
        size = packaged.image_size
        f = np.asarray(Image.fromarray(face).resize((size, size), Image.BICUBIC))
        bench(f"packaged default translator {packaged.name!r}", packaged, f, args)


if __name__ == "__main__":
    main()
