"""End-to-end ``predict`` speed on 60 s of speech: real-time factor per estimator and per stage.

    python benchmarks/bench_predict.py [--threads 2] [--repeat 5] [--seconds 60] [--audio FILE]
    python benchmarks/bench_predict.py --feature whisper --layer 2 --arch cnn dcnn   # Whisper front end

The input is ``examples/data/speech.wav`` (real espeak-ng speech, 8.8 s) tiled to ``--seconds``
(or any ``--audio`` file, e.g. a RAVDESS clip), written to a temporary folder as 16 kHz and
48 kHz 16-bit WAV. For every registered estimator (random weights: speed does not depend on
them) it times:

- ``predict(path)`` end to end, from a 16 kHz file and from a 48 kHz file (read + resample);
- the stages: read the file (soundfile), resample 48 kHz -> 16 kHz, features (log-mel or MFCC
  + normalisation), network (+ calibration);
- for streamable models, the streaming path (``stream().push`` of 100 ms chunks + ``flush``).

Real-time factor (RTF) = audio seconds / processing seconds (1000x: an hour in 3.6 s). Times
are the minimum over ``--repeat`` runs (the median is shown too: on a busy machine the minimum
is the better estimate of the code's own cost). Targets on 2 cores: cnn end to end >= 1000x real
time with log-mel features, >= 100x with the Whisper front end (``--feature whisper``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechface import SpeechEstimator
from speechface.audio import load_audio, resample
from speechface.speech.estimators import list_estimators
from speechface.speech.streaming import stream_support

REPO = Path(__file__).resolve().parents[1]
TARGET_RTF = 1000.0
WHISPER_TARGET_RTF = 100.0


def timeit(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """``(min, median)`` seconds of ``fn()`` over ``repeat`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def make_inputs(folder: Path, seconds: float, source: Path) -> tuple[Path, Path]:
    """``seconds`` of ``source`` tiled, as 16 kHz and 48 kHz 16-bit WAV files in ``folder``."""
    wave = load_audio(source).numpy()  # 16 kHz mono
    n = int(seconds * 16000)
    x = np.tile(wave, n // len(wave) + 1)[:n]
    p16, p48 = folder / "speech16k.wav", folder / "speech48k.wav"
    sf.write(p16, x, 16000, subtype="PCM_16")
    sf.write(p48, resample(torch.from_numpy(x), 16000, 48000).numpy(), 48000, subtype="PCM_16")
    return p16, p48


def bench_arch(arch: str, p16: Path, p48: Path, seconds: float, repeat: int,
               feature: str | None = None, feature_args: dict | None = None) -> dict:
    """Timings (min, median seconds) of each stage and of the end-to-end paths for ``arch``."""
    torch.manual_seed(0)
    est = SpeechEstimator.create(arch, feature=feature, feature_args=feature_args).eval()
    wave = load_audio(p16)
    wave48 = load_audio(p48, target_rate=48000)
    r: dict[str, tuple[float, float]] = {}
    with torch.inference_mode():
        feats = est.featurize(wave)[None]
        r["read"] = timeit(lambda: sf.read(str(p16), dtype="float32", always_2d=True), repeat)
        r["read48"] = timeit(lambda: sf.read(str(p48), dtype="float32", always_2d=True), repeat)
        r["resample"] = timeit(lambda: resample(wave48, 48000, 16000), repeat)
        r["features"] = timeit(lambda: est.featurize(wave), repeat)
        r["network"] = timeit(lambda: est(feats), repeat)
    r["e2e16"] = timeit(lambda: est.predict(p16), repeat)
    r["e2e48"] = timeit(lambda: est.predict(p48), repeat)
    if stream_support(est) is None:
        x = wave.numpy()
        step = 1600  # 100 ms

        def run_stream() -> None:
            st = est.stream()
            for i in range(0, len(x), step):
                st.push(x[i:i + step])
            st.flush()

        r["stream"] = timeit(run_stream, max(1, repeat // 2))
    return r


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--audio", type=Path, default=REPO / "examples" / "data" / "speech.wav",
                    help="speech to tile (default: the example file)")
    ap.add_argument("--arch", nargs="*", default=None, help="estimators (default: all)")
    ap.add_argument("--feature", default=None, help="feature extractor (default: each arch's own)")
    ap.add_argument("--layer", type=int, default=None, help="whisper: encoder blocks to run")
    args = ap.parse_args()
    fargs = {"layer": args.layer} if args.feature == "whisper" and args.layer else None
    target = WHISPER_TARGET_RTF if args.feature == "whisper" else TARGET_RTF
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"predict on {args.seconds:g} s of speech ({args.audio.name} tiled); "
          f"{args.threads} torch threads, {os.cpu_count()} CPUs, load average {load:.1f}, "
          f"torch {torch.__version__}; min (median) of {args.repeat} runs; features: "
          f"{args.feature or 'default'}{f' {fargs}' if fargs else ''}")
    s = args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        p16, p48 = make_inputs(Path(tmp), s, args.audio)
        print(f"\n{'arch':10s} {'e2e 16k':>16s} {'e2e 48k':>16s} {'stream 100ms':>14s} | "
              f"{'read':>7s} {'read48':>7s} {'resamp':>7s} {'feats':>7s} {'net':>7s}  (ms)  "
              f"net share")
        results = {}
        for arch in args.arch or list_estimators():
            if args.feature == "whisper" and arch in ("lstm_mfcc",):
                continue
            r = bench_arch(arch, p16, p48, s, args.repeat, args.feature, fargs)
            results[arch] = r

            def rtf(key: str, r: dict = r) -> str:
                if key not in r:
                    return "-"
                lo, med = r[key]
                return f"{s / lo:,.0f}x ({s / med:,.0f})"

            ms = [f"{r[k][0] * 1000:7.1f}" for k in ("read", "read48", "resample", "features",
                                                     "network")]
            share = r["network"][0] / (r["read"][0] + r["features"][0] + r["network"][0])
            print(f"{arch:10s} {rtf('e2e16'):>16s} {rtf('e2e48'):>16s} {rtf('stream'):>14s} | "
                  f"{' '.join(ms)}       {share:5.0%}")
    cnn = results.get("cnn")
    if cnn:
        got = s / cnn["e2e16"][0]
        print(f"\ncnn end to end (16 kHz file): {got:,.0f}x real time; target {target:,.0f}x: "
              f"{'met' if got >= target else 'NOT met'} ({got / target:.2f} of target)")
        st = cnn["read"][0] + cnn["features"][0] + cnn["network"][0]
        print(f"cnn stages: read {cnn['read'][0] / st:.0%}, features {cnn['features'][0] / st:.0%}"
              f", network {cnn['network'][0] / st:.0%} of their sum; 48 kHz input costs "
              f"{cnn['e2e48'][0] / cnn['e2e16'][0]:.2f}x the 16 kHz one (resampling "
              f"{cnn['resample'][0] * 1000:.1f} ms)")
        if "stream" in cnn:
            print(f"cnn streaming (100 ms chunks): {cnn['stream'][0] / cnn['e2e16'][0]:.2f}x the "
                  f"time of offline predict")


if __name__ == "__main__":
    main()
