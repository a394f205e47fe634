"""Live mode throughput and memory: can ``speechface stream`` keep up for an hour on 2 cores?

    python benchmarks/bench_stream.py [--minutes 60] [--threads 2] [--model FOLDER|NAME]
                                      [--arch cnn] [--audio FILE] [--sink json|udp|osc]

Feeds speech through the same loop as ``speechface stream`` (:func:`speechface.avatars.live.run_live`:
``est.stream()`` pushes in 40 ms chunks, every frame serialised and sent to a sink) as fast as
the CPU allows, and reports:

- the real-time factor (audio seconds per wall second; >= 1 keeps up live) overall and for each
  tenth of the run (a slowdown over time would show there), and per CPU second of the process
  (``real_time_factor_cpu``: what the loop needs of the cores it runs on, independent of other
  jobs sharing the machine; with ``--threads 2`` it counts both threads);
- peak resident memory (``ru_maxrss``) and the RSS after each tenth (bounded memory: flat);
- the per-chunk processing time (mean, p99, max) against the 40 ms budget of a live chunk.

Input: ``--audio FILE`` looped (default: ``examples/data/speech.wav``), ``--synthetic`` for a
speech-like signal. The sink is a JSON-lines writer to ``/dev/null`` (``--sink json``), UDP JSON
datagrams to a local port nobody reads (``udp``) or OSC (``osc``). ``--minutes 5`` runs a shortened
version: memory that is flat over the tenths and a constant real-time factor extrapolate to an
hour (say so when you report it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """Current resident set size (MB), from /proc (Linux) or ru_maxrss elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def speechlike(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f0) / rate
    env = np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None)
    rng = np.random.default_rng(0)
    return (0.08 * sum(np.sin(k * ph) / k for k in range(1, 12)) * env
            + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None, help="model folder or packaged name")
    p.add_argument("--arch", default="cnn", help="untrained architecture when --model is absent")
    p.add_argument("--space", default="blendshapes52")
    p.add_argument("--audio", default=str(REPO / "examples" / "data" / "speech.wav"))
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--sink", default="json", choices=["json", "udp", "osc"])
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from speechface.audio import load_audio
    from speechface.avatars.live import JsonLinesSink, OscSink, UdpJsonSink, run_live
    from speechface.speech import SpeechEstimator, estimator_class

    est = (SpeechEstimator.from_pretrained(args.model) if args.model
           else estimator_class(args.space).create(args.arch, space=args.space))
    wave = speechlike(30.0) if args.synthetic else load_audio(args.audio, target_rate=16000).numpy()
    total = int(args.minutes * 60 * 16000)
    block = 640
    tenths = [int(total * k / 10) for k in range(1, 11)]
    marks: list[dict[str, float]] = []
    chunk_hist = np.zeros(100_001, np.int64)  # 10 us bins up to 1 s: constant memory
    chunk_sum, chunk_max = [0.0], [0.0]
    rss0 = rss_mb()

    def chunks():
        pos, done, nxt = 0, 0, 0
        t0 = time.perf_counter()
        last = t0
        while done < total:
            n = min(block, total - done)
            if pos + n > len(wave):
                x = np.concatenate([wave[pos:], wave[:pos + n - len(wave)]])
                pos = pos + n - len(wave)
            else:
                x = wave[pos:pos + n]
                pos += n
            done += n
            yield x, None
            now = time.perf_counter()
            dt = now - last  # one push + its frames' sending, plus the slicing
            chunk_hist[min(int(dt * 1e5), len(chunk_hist) - 1)] += 1
            chunk_sum[0] += dt
            chunk_max[0] = max(chunk_max[0], dt)
            last = now
            if nxt < len(tenths) and done >= tenths[nxt]:
                marks.append({"audio_s": done / 16000, "wall_s": now - t0, "rss_mb": rss_mb()})
                nxt += 1

    with open(os.devnull, "w") as devnull:
        sink = {"json": lambda: JsonLinesSink(devnull), "udp": lambda: UdpJsonSink(9),
                "osc": lambda: OscSink(9)}[args.sink]()
        t0, c0 = time.perf_counter(), time.process_time()
        stats = run_live(est, chunks(), sink)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sink.close()
    n_chunks = int(chunk_hist.sum())
    p99 = (int(np.searchsorted(np.cumsum(chunk_hist), 0.99 * n_chunks)) + 1) / 1e5
    seg = []
    prev = {"audio_s": 0.0, "wall_s": 0.0}
    for m in marks:
        seg.append(round((m["audio_s"] - prev["audio_s"]) / max(m["wall_s"] - prev["wall_s"], 1e-9), 1))
        prev = m
    result = {
        "model": est.name, "pretrained": est.pretrained, "arch": est.network.arch,
        "threads": args.threads, "sink": args.sink, "audio_minutes": args.minutes,
        "frames": stats["frames"], "wall_s": round(wall, 2),
        "real_time_factor": round(total / 16000 / wall, 1),
        "cpu_s": round(cpu, 2),
        "real_time_factor_cpu": round(total / 16000 / max(cpu, 1e-9), 1),
        "rtf_per_tenth": seg,
        "chunk_ms": {"mean": round(chunk_sum[0] / max(n_chunks, 1) * 1000, 3),
                     "p99": round(p99 * 1000, 2), "max": round(chunk_max[0] * 1000, 3),
                     "budget": 40.0},
        "rss_mb": {"start": round(rss0, 1), "per_tenth": [round(m["rss_mb"], 1) for m in marks],
                   "peak_ru_maxrss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1)},
        "model_latency_ms": round(stats["latency_model_s"] * 1000, 1),
        "load_average": os.getloadavg(), "nproc": os.cpu_count(), "torch": torch.__version__,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
