"""Speech -> a Blender script that keys ARKit-named shape keys (lip sync for any ARKit rig).

``speechface.avatars.exporters.write_blender_script`` writes a self-contained Python script with the 52
curves inside; run it in Blender and every mesh whose shape keys carry ARKit names
(``jawOpen``, ``eyeBlinkLeft``, ``mouthSmile_L`` ...) gets one keyframe per frame, the scene's
frame rate and range are set, and the speech is added as a sound strip::

    blender character.blend --python take.py                    # the active object
    blender character.blend --python take.py -- --object Face   # a named object
    blender -b --python take.py -- --demo --save demo.blend     # a demo mesh with the 52 keys

Run from the repository root::

    python examples/blender_keys.py                           # -> runs/examples/take_blender.py
    python examples/blender_keys.py speech.wav -o take.py --run-blender   # and try it headless
    python examples/blender_keys.py --fast -o /tmp/take.py          # CI

``--run-blender`` runs the script in Blender in the background on a demo mesh (when a
``blender`` executable is on the PATH) and prints how many shape keys it keyed. Without a
packaged model, ``--fast`` falls back to RANDOM WEIGHTS and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_model(name: str | None, fast: bool):
    from speechface import BlendshapeEstimator, SpeechfaceError

    try:
        return BlendshapeEstimator.from_pretrained(name)
    except SpeechfaceError as e:
        if name is not None or not fast:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from e
        print("NOTE: no packaged ARKit model in this version; --fast uses RANDOM WEIGHTS.",
              file=sys.stderr)
        return BlendshapeEstimator.create("cnn")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("speech", nargs="?", default=str(HERE / "data" / "speech.wav"))
    p.add_argument("-o", "--output", default="runs/examples/take_blender.py")
    p.add_argument("--model", default=None, help="model folder or packaged name")
    p.add_argument("--fps", type=float, default=25.0, help="key rate (default 25)")
    p.add_argument("--run-blender", action="store_true", help="try the script in Blender")
    p.add_argument("--fast", action="store_true", help="CI mode")
    args = p.parse_args(argv)
    fast = args.fast or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")

    from speechface.avatars.exporters import write_blender_script

    est = load_model(args.model, fast)
    pred = est.predict(args.speech)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_blender_script(pred, out, fps=args.fps, audio=str(Path(args.speech).resolve()))
    kind = "" if est.pretrained else " [RANDOM WEIGHTS]"
    print(f"{args.speech}: {len(pred)} frames -> {out} (Blender script, 52 shape-key curves at "
          f"{args.fps:g} fps); model {est.name}{kind}")
    if args.run_blender:
        blender = shutil.which("blender")
        if blender is None:
            print("no blender on the PATH: run the script in Blender yourself")
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([blender, "-b", "--factory-startup", "--python", str(out),
                                   "--", "--demo", "--save", str(Path(tmp) / "demo.blend")],
                                  capture_output=True, text=True, timeout=300)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SPEECHFACE_RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"Blender failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        res = json.loads(lines[-1].split(" ", 1)[1])
        for name, obj in res["objects"].items():
            print(f"Blender: keyed {len(obj['keyed'])} shape keys of {name} over {res['frames']} "
                  f"frames at {res['fps']:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
