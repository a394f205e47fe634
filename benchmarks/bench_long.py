"""Long audio: ``predict_long`` (blocks) vs whole-file ``predict`` on a 1-hour file.

    python benchmarks/bench_long.py [--minutes 60] [--rate 16000] [--arch cnn] [--chunk 60]
                                    [--threads 2] [--keep]

Writes a synthetic speech-like recording (harmonics with a moving pitch, syllable-rate
envelope, pauses and noise; 16-bit WAV, mono) of ``--minutes`` to a temporary folder (never
the repository), then runs each method in a fresh Python process and reports:

- peak resident memory of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its
  increase over the same process right before the call (imports and model already loaded);
- the peak of Python/numpy allocations traced by ``tracemalloc`` (torch's own allocations are
  not traced: RSS is the number that counts);
- wall time and real-time factor;
- the largest difference between the two methods' outputs (must be < 1e-5).

Whole-file prediction of 1 hour at 16 kHz needs several GB (audio, STFT, activations); use
``--minutes 10`` on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf


def write_speechlike(path: Path, seconds: float, rate: int, block_s: float = 30.0) -> None:
    """A speech-like signal written block by block (bounded memory)."""
    rng = np.random.default_rng(0)
    n_total = int(seconds * rate)
    block = int(block_s * rate)
    phase = 0.0
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for start in range(0, n_total, block):
            n = min(block, n_total - start)
            t = (start + np.arange(n)) / rate
            f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 0.13 * t)
            ph = phase + 2 * np.pi * np.cumsum(f0) / rate
            phase = float(ph[-1])
            voiced = sum(np.sin(k * ph) / k for k in range(1, 12))
            env = np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None) * (np.sin(2 * np.pi * 0.05 * t) > -0.6)
            x = 0.08 * voiced * env + 0.003 * rng.standard_normal(n)
            f.write(x.astype(np.float32))


def child(method: str, path: str, arch: str, chunk: float, threads: int, out: str) -> None:
    """Run one method in this (fresh) process and print a JSON line of measurements."""
    import torch

    torch.set_num_threads(threads)
    from speechface import SpeechEstimator
    from speechface.speech import longform

    torch.manual_seed(0)
    est = SpeechEstimator.create(arch).eval()
    est.predict(np.zeros(16000, np.float32), 16000)  # warm up the kernels
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t = time.perf_counter()
    if method == "long":
        pred = longform.predict_long(est, path, chunk_seconds=chunk)
    else:
        longform.LONG_SECONDS = float("inf")  # no automatic switch: the whole file at once
        pred = est.predict(path)
    seconds = time.perf_counter() - t
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(out, pred.values)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "base_rss_mb": base_rss,
                      "traced_peak_mb": traced / 2**20, "frames": len(pred)}))


def main() -> None:
    """Write the file, run both methods in subprocesses, print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--chunk", type=float, default=60.0, help="predict_long block seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["long", "whole"])
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        method, path, arch, chunk, out = args._child
        child(method, path, arch, float(chunk), args.threads, out)
        return
    tmp = Path(tempfile.mkdtemp(prefix="speechface-bench-long-"))
    try:
        audio = tmp / "long.wav"
        t = time.perf_counter()
        write_speechlike(audio, args.minutes * 60, args.rate)
        seconds = args.minutes * 60
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{args.minutes:g} min synthetic speech at {args.rate} Hz "
              f"({audio.stat().st_size / 2**20:.0f} MB WAV, written in "
              f"{time.perf_counter() - t:.1f} s to {tmp}); model {args.arch}, "
              f"{args.threads} threads, load average {load:.1f}")
        res = {}
        for m in args.methods:
            out = tmp / f"{m}.npy"
            proc = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads), "--_child", m,
                 str(audio), args.arch, str(args.chunk), str(out)],
                capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{m:6s} FAILED (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            res[m] = (r, np.load(out))
            print(f"{m:6s} {r['seconds']:8.1f} s  {seconds / r['seconds']:8,.0f}x real time  "
                  f"peak RSS {r['peak_rss_mb']:7,.0f} MB (+{r['peak_rss_mb'] - r['base_rss_mb']:,.0f}"
                  f" MB over the loaded process)  tracemalloc peak {r['traced_peak_mb']:,.0f} MB"
                  f"  {r['frames']:,} frames")
        if "long" in res and "whole" in res:
            (rl, vl), (rw, vw) = res["long"], res["whole"]
            extra_l = rl["peak_rss_mb"] - rl["base_rss_mb"]
            extra_w = rw["peak_rss_mb"] - rw["base_rss_mb"]
            print(f"predict_long uses {extra_l / max(extra_w, 1e-9):.3f}x the extra memory of "
                  f"whole-file predict and {rl['seconds'] / rw['seconds']:.2f}x its time; "
                  f"max |difference| {np.abs(vl - vw).max():.2e}")
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
