"""Peak memory and time of ``speechface animate`` for long speech (the frames are streamed).

    python benchmarks/bench_animate_memory.py --minutes 10 [--minutes 60] [--device cpu]

For each ``--minutes`` value, ``examples/data/speech.wav`` (8.8 s of speech) is tiled to that
length and written to a temporary 16 kHz WAV; ``speechface animate SPEECH examples/data/
astronaut.jpg -o out.mp4`` then runs as a child process under ``/usr/bin/time -v``.
Printed per run: frames, wall time, frames/s, the child's peak resident memory ("Maximum
resident set size"), its RSS every 5 s, the output size, the load average before and after
and ``nproc``. ``--stop-after S`` stops a run after S seconds (for lengths this machine cannot
render in reasonable time) and reports the peak so far (VmHWM) and how many frames were done.

``animate`` renders ``--batch-size`` frames (16) at a time while encoding, so the peak should
not grow with the length: only the audio (16 kHz float32: 230 MB per hour, held twice while
the estimators run) and the per-frame conditions (a few kB per second) do. Target: 10 min of
speech under 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
TARGET_GB = 1.5


def make_speech(path: Path, minutes: float) -> float:
    """Tile the example speech to ``minutes``; returns the duration in seconds."""
    wave, rate = sf.read(REPO / "examples" / "data" / "speech.wav", dtype="int16")
    n = int(minutes * 60 * rate)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        done = 0
        while done < n:
            block = wave[: n - done]
            f.write(block)
            done += len(block)
    return n / rate


def _status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a process, {} once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in re.findall(r"^(Vm\w+):\s+(.*)$", text, re.M)}


def _python_child(pid: int) -> int | None:
    """The python process /usr/bin/time started."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def run(minutes: float, device: str, extra: list[str], stop_after: float | None
        ) -> dict[str, object]:
    """One animate run; with ``stop_after`` seconds it is stopped then (peak so far)."""
    with tempfile.TemporaryDirectory(prefix="bench-animate-") as tmp:
        speech, out = Path(tmp) / "speech.wav", Path(tmp) / "out.mp4"
        seconds = make_speech(speech, minutes)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "speechface.cli", "animate",
               str(speech), str(REPO / "examples" / "data" / "astronaut.jpg"), "-o", str(out),
               "--device", device, "--max-seconds", str(seconds + 1), *extra]
        load0 = os.getloadavg()
        t = time.perf_counter()
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            samples: list[tuple[float, int]] = []  # (seconds, VmRSS kB) every 5 s
            hwm, child, stopped = 0, None, False
            while proc.poll() is None:
                time.sleep(1.0)
                child = child or _python_child(proc.pid)
                st = _status(child) if child else {}
                if st:
                    hwm = max(hwm, st.get("VmHWM", 0))
                    now = time.perf_counter() - t
                    if not samples or now - samples[-1][0] >= 5:
                        samples.append((now, st.get("VmRSS", 0)))
                if stop_after is not None and time.perf_counter() - t > stop_after and child \
                        and not stopped:
                    os.kill(child, 9)
                    stopped = True
            proc.wait()
        wall = time.perf_counter() - t
        load1 = os.getloadavg()
        text = err_path.read_text()
        frames = None
        if not stopped:
            if proc.returncode != 0:
                print(text[-3000:], file=sys.stderr)
                raise SystemExit(f"animate failed for {minutes} min (exit {proc.returncode})")
            hwm = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1])
            frames = int(re.search(r"wrote .*?: (\d+) frames", text)[1])
        done = re.findall(r"(\d+)/(\d+) \[", text)  # tqdm's last "n/N [" on stderr
        rendered = int(done[-1][0]) if done else None
        return {"minutes": minutes, "frames": frames, "rendered": rendered, "wall_s": wall,
                "peak_gb": hwm / 1024**2, "stopped": stopped, "samples": samples,
                "mp4_mb": out.stat().st_size / 1e6 if out.exists() else None,
                "load_before": load0, "load_after": load1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, action="append", default=None,
                    help="speech length in minutes (repeatable; default 10)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--extra", default="", help="more animate options, e.g. '--fast'")
    ap.add_argument("--stop-after", type=float, default=None, metavar="S",
                    help="stop each run after S seconds and report the peak so far (the "
                         "setup: audio, conditions for every frame, then S s of rendering)")
    args = ap.parse_args()
    import torch

    print(f"nproc {os.cpu_count()}, torch {torch.__version__}, device {args.device}, "
          f"load average {os.getloadavg()}")
    for minutes in args.minutes or [10.0]:
        r = run(minutes, args.device, args.extra.split(), args.stop_after)
        ok = "ok" if r["peak_gb"] < TARGET_GB else f"OVER {TARGET_GB} GB"
        how = (f"stopped after {r['wall_s']:.0f} s, {r['rendered']} frames rendered"
               if r["stopped"] else f"{r['frames']} frames in {r['wall_s']:.0f} s "
               f"({r['frames'] / r['wall_s']:.1f} frames/s), mp4 {r['mp4_mb']:.1f} MB")
        print(f"{r['minutes']:g} min of speech: peak RSS {r['peak_gb']:.3f} GB ({ok}); {how}; "
              f"load {r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}", flush=True)
        step = max(1, len(r["samples"]) // 20)  # about 20 points
        trace = ", ".join(f"{s:.0f}s:{kb / 1024:.0f}MB" for s, kb in r["samples"][::step])
        print(f"  RSS over time: {trace}", flush=True)


if __name__ == "__main__":
    main()
