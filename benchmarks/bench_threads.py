"""``predict`` time with 1 and with N torch threads, on a quiet machine and next to busy cores.

    python benchmarks/bench_threads.py [--seconds 60] [--repeat 7] [--busy 1] [--threads 2]

The packaged default AU estimator predicts ``--seconds`` of speech (the example tiled) in this
process with ``torch.set_num_threads(t)`` for t = 1 and t = ``--threads`` (default: the core
count), and with speechface's automatic choice (:func:`speechface.core.threads.choose_threads`,
what ``speechface predict`` uses). Then ``--busy`` child processes that spin a core each are
started (a busy neighbour) and the same timings are repeated. The load average is printed
before each phase. Times: median (and min) over ``--repeat`` runs after a warm-up.

Small models gain little from a second thread on a quiet machine, and collapse when a
neighbour holds a core: OpenMP threads wait for each other at every barrier.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from speechface import AUEstimator
from speechface.audio import load_audio
from speechface.core.threads import auto_threads, choose_threads

REPO = Path(__file__).resolve().parents[1]


def timings(fn, repeat: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts)


def phase(name: str, est: AUEstimator, x: np.ndarray, threads: list[int], repeat: int) -> None:
    print(f"--- {name}: load average {tuple(round(v, 2) for v in os.getloadavg())}, "
          f"nproc {os.cpu_count()}")
    for t in threads:
        torch.set_num_threads(t)
        med, low = timings(lambda: est.predict(x, 16000), repeat)
        print(f"  torch threads {t}: median {1000 * med:7.1f} ms  (min {1000 * low:7.1f} ms)")

    def auto() -> None:
        with auto_threads(est):
            est.predict(x, 16000)

    med, low = timings(auto, repeat)
    print(f"  automatic ({choose_threads(est)} thread): median {1000 * med:7.1f} ms  "
          f"(min {1000 * low:7.1f} ms)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--busy", type=int, default=1, help="busy child processes (default 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    est = AUEstimator.from_pretrained()
    wave = load_audio(REPO / "examples" / "data" / "speech.wav").numpy()
    n = int(args.seconds * 16000)
    x = np.tile(wave, n // len(wave) + 1)[:n]
    print(f"model {est.name} ({sum(p.numel() for p in est.parameters()):,} weights), "
          f"{args.seconds:g} s of speech, torch {torch.__version__}")
    threads = sorted({1, args.threads})
    phase("quiet (no busy neighbour started)", est, x, threads, args.repeat)
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        time.sleep(3)
        phase(f"busy ({args.busy} spinning process{'es' if args.busy > 1 else ''})", est, x,
              threads, args.repeat)
    finally:
        for p in spin:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
