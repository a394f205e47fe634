"""Training throughput of the speech estimators, in feature frames per second.

    python benchmarks/bench_training.py [--threads 2] [--steps 20]

Each architecture trains on random batches shaped like the real recipe (32 windows of 128
frames, 80 log-mel bands; lstm_mfcc: 8 utterances of 100 frames of 39 MFCCs) with Adam and the
masked L1 loss; the first steps are warm-up. Prints frames/s and seconds per 1,000 steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from speechface.speech.estimators import create_estimator, list_estimators


def bench(arch: str, steps: int, warmup: int = 3) -> float:
    in_f = 39 if arch == "lstm_mfcc" else 80
    b, t = (8, 100) if arch == "lstm_mfcc" else (32, 128)
    space = "landmarks68" if arch == "cnn_gru" else "au17"
    net = create_estimator(arch, in_features=in_f, space=space)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(b, t, in_f)
    y = torch.rand(b, t, net.out_dim) if net.frame_level else torch.rand(b, net.out_dim)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = net.space.loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return b * t * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"training throughput, {args.threads} CPU threads, torch {torch.__version__}")
    print(f"{'arch':10s} {'frames/s':>10s} {'x real time':>12s}")
    for arch in list_estimators():
        fps = bench(arch, args.steps)
        print(f"{arch:10s} {fps:10,.0f} {fps / 25:12,.0f}")


if __name__ == "__main__":
    main()
