"""Export ARKit-52 blendshape tracks for avatar tools: Live Link Face CSV, JSON curves, three.js
clips and Blender scripts.

Every exporter takes a *track*: a :class:`~speechface.core.results.Prediction` (``blendshapes52``;
an ``au17`` or ``emotion8`` prediction is converted first, see :func:`arkit_track`) or a
``(frames, 52)`` array in :data:`~speechface.spaces.ARKIT52_NAMES` order at ``fps``. ``fps=`` on
the writers resamples the 25 fps curves (linear interpolation) for tools that expect another
rate (Live Link Face records at 60 or 30).

========== ============================= ====================================================
format     file                          for
========== ============================= ====================================================
livelink   ``take.csv``                  Unreal (MetaHuman, LiveLinkFaceImporter), Blender and
                                         Unity importers of the iPhone app's recordings:
                                         ``Timecode, BlendShapeCount, EyeBlinkLeft ...
                                         TongueOut, HeadYaw ... RightEyeRoll`` (61 values)
json       ``take.json``                 any engine: ``{"fps", "names", "times",
                                         "curves": {name: [values]}}`` (Unity, Godot, web)
threejs    ``take.json``                 three.js: ``THREE.AnimationClip.parse(json)`` gives a
                                         clip of ``.morphTargetInfluences[name]`` tracks
blender    ``take.py``                   Blender: ``blender scene.blend --python take.py``
                                         keys the shape keys named after the blendshapes
========== ============================= ====================================================

Speech gives no head or eye rotation: the Live Link rotation columns are written as 0 (the
neutral pose). ``tongueOut`` comes from the model (0 for models trained on the MediaPipe teacher,
which does not estimate it).

Example:
    >>> import numpy as np, tempfile, os
    >>> track = np.zeros((50, 52), np.float32)                 # 2 s at 25 fps
    >>> path = os.path.join(tempfile.mkdtemp(), "take.csv")
    >>> write_livelink_csv(track, path, fps=25)
    >>> open(path).read().splitlines()[1][:30]
    '00:00:00:00.000,61,0.0000,0.00'
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..core._io import atomic_write
from ..spaces.space import ARKIT52_NAMES

__all__ = ["FORMATS", "LIVE_LINK_BLENDSHAPES", "LIVE_LINK_ROTATIONS", "LIVE_LINK_COLUMNS",
           "arkit_track", "resample_track", "livelink_timecode", "write_livelink_csv",
           "write_curves_json", "write_threejs_clip", "write_blender_script", "export_track"]

#: Formats :func:`export_track` writes (``csv`` = the OpenFace-style CSV of any space).
FORMATS: tuple[str, ...] = ("csv", "livelink", "json", "threejs", "blender")

#: The 52 blendshape columns of a Live Link Face recording, in the app's order (Apple's
#: ``ARFaceAnchor.BlendShapeLocation`` order: left eye, right eye, jaw, mouth, brows, cheeks,
#: nose, tongue), PascalCase as the app writes them.
LIVE_LINK_BLENDSHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)
#: The 9 rotation columns after the blendshapes (head and eyes; written as 0 from speech).
LIVE_LINK_ROTATIONS: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
#: The full header of a Live Link Face CSV (63 columns; ``BlendShapeCount`` = 61 values).
LIVE_LINK_COLUMNS: tuple[str, ...] = (("Timecode", "BlendShapeCount") + LIVE_LINK_BLENDSHAPES
                                      + LIVE_LINK_ROTATIONS)

_ARKIT_INDEX = {n.lower(): i for i, n in enumerate(ARKIT52_NAMES)}
#: position in ARKIT52_NAMES of each Live Link column
_LIVE_LINK_FROM_ARKIT = tuple(_ARKIT_INDEX[n.lower()] for n in LIVE_LINK_BLENDSHAPES)


# --------------------------------------------------------------------------- tracks
def arkit_track(track: Any, fps: float | None = None) -> tuple[np.ndarray, float]:
    """A track as ``((frames, 52) float32 ARKit values, fps)``.

    Args:
        track: a :class:`~speechface.core.results.Prediction` of space ``blendshapes52``, ``au17``
            (converted by :func:`~speechface.spaces.blendshapes.au17_to_arkit52`) or ``emotion8``
            (FACS prototypes :func:`~speechface.spaces.emotion_to_au`, then as au17); or a
            ``(frames, 52)`` array in ARKit-52 order.
        fps: the array's frame rate (default 25; a Prediction carries its own).

    Raises:
        ValueError: another space (landmarks), wrong shape, or values that are not finite.

    Example:
        >>> v, fps = arkit_track(np.zeros((3, 52))); v.shape, fps
        ((3, 52), 25.0)
    """
    from ..core.results import Prediction

    if isinstance(track, Prediction):
        if not track.frame_level:
            raise ValueError("an utterance-level prediction has no frames to export")
        values, rate = np.asarray(track.values, np.float32), float(track.fps)
        if track.space == "au17":
            from ..spaces.blendshapes import au17_to_arkit52

            values = au17_to_arkit52(values)
        elif track.space == "emotion8":
            from ..spaces.blendshapes import au17_to_arkit52
            from ..spaces.space import emotion_to_au

            values = au17_to_arkit52(emotion_to_au(values))
        elif track.space != "blendshapes52":
            raise ValueError(f"cannot export a {track.space} prediction as ARKit blendshapes "
                             "(use a blendshapes52, au17 or emotion8 model)")
    else:
        values = np.asarray(track, dtype=np.float32)
        rate = 25.0 if fps is None else float(fps)
        if values.ndim != 2 or values.shape[1] != 52:
            raise ValueError(f"an ARKit track is (frames, 52) values, got shape {values.shape}")
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"fps must be a positive number, got {rate!r}")
    if not np.isfinite(values).all():
        raise ValueError("the track has NaN or infinite values")
    return np.clip(values, 0.0, 1.0).astype(np.float32), rate


def resample_track(values: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear interpolation of ``(frames, D)`` curves from ``fps_in`` to ``fps_out``.

    Output frame ``k`` is at ``k / fps_out`` s, for every such time within the input's span
    ``[0, (frames - 1) / fps_in]`` (the last input frame's time); the same rate returns the input.

    Example:
        >>> resample_track(np.array([[0.0], [1.0]]), 25, 50)[:, 0].tolist()
        [0.0, 0.5, 1.0]
    """
    v = np.asarray(values, dtype=np.float32)
    if not (math.isfinite(fps_out) and fps_out > 0):
        raise ValueError(f"fps must be a positive number, got {fps_out!r}")
    if fps_in == fps_out or len(v) <= 1:
        return v
    t_in = np.arange(len(v)) / float(fps_in)
    n_out = int(math.floor(t_in[-1] * fps_out + 1e-9)) + 1
    t_out = np.arange(n_out) / float(fps_out)
    return np.stack([np.interp(t_out, t_in, v[:, j]) for j in range(v.shape[1])],
                    axis=1).astype(np.float32)


def _prepared(track: Any, fps: float | None, track_fps: float | None = None
              ) -> tuple[np.ndarray, float]:
    values, rate = arkit_track(track, track_fps)
    if fps is not None and float(fps) != rate:
        values, rate = resample_track(values, rate, float(fps)), float(fps)
    return values, rate


def livelink_timecode(frame: int, fps: float, start_seconds: float = 0.0) -> str:
    """Live Link Face timecode ``HH:MM:SS:FF.mmm`` of frame ``frame`` at ``fps``.

    ``FF`` counts frames within the second at ``fps`` (rounded down) and ``.mmm`` is the
    sub-frame fraction in thousandths (0 for frames exactly on the frame grid).

    Example:
        >>> livelink_timecode(0, 25), livelink_timecode(26, 25), livelink_timecode(90061 * 60, 60)
        ('00:00:00:00.000', '00:00:01:01.000', '25:01:01:00.000')
    """
    t = start_seconds + frame / float(fps)
    whole = math.floor(t + 1e-9)
    pos = (t - whole) * fps
    ff = math.floor(pos + 1e-6)
    sub = min(999, max(0, round((pos - ff) * 1000)))
    h, rem = divmod(int(whole), 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{sub:03d}"


# --------------------------------------------------------------------------- writers
def write_livelink_csv(track: Any, path: str | os.PathLike[str], *, fps: float | None = None,
                       track_fps: float | None = None, decimals: int = 4) -> None:
    """Write a Live Link Face recording CSV (the iPhone app's take format).

    Columns: :data:`LIVE_LINK_COLUMNS`: ``Timecode`` (``HH:MM:SS:FF.mmm`` at the file's rate,
    from 0), ``BlendShapeCount`` (61: the 52 blendshapes and 9 rotations), the 52 blendshapes in
    the app's order (0-1), then head and eye yaw/pitch/roll (0: speech carries no head pose).

    Args:
        track: see :func:`arkit_track`.
        path: the ``.csv`` to write (atomically).
        fps: output frame rate (default: the track's, 25); Live Link Face itself records at 60
            or 30.
        track_fps: the rate of an array ``track`` (default 25).
        decimals: digits after the point.

    Example:
        >>> write_livelink_csv(est.predict("speech.wav"), "take.csv", fps=60)   # doctest: +SKIP
    """
    values, rate = _prepared(track, fps, track_fps)
    ordered = values[:, list(_LIVE_LINK_FROM_ARKIT)]
    fmt = f"%.{int(decimals)}f"
    zeros = ",".join([fmt % 0.0] * len(LIVE_LINK_ROTATIONS))
    count = len(LIVE_LINK_BLENDSHAPES) + len(LIVE_LINK_ROTATIONS)
    with atomic_write(path, newline="") as f:
        f.write(",".join(LIVE_LINK_COLUMNS) + "\n")
        for i, row in enumerate(ordered):
            f.write(f"{livelink_timecode(i, rate)},{count},"
                    + ",".join(fmt % v for v in row) + "," + zeros + "\n")


def _meta(track: Any) -> dict[str, Any]:
    from ..core.results import Prediction

    if isinstance(track, Prediction):
        return {"model": track.model, "pretrained": bool(track.pretrained),
                "source_space": track.space, "source": track.source}
    return {}


def write_curves_json(track: Any, path: str | os.PathLike[str], *, fps: float | None = None,
                      track_fps: float | None = None, decimals: int = 4) -> None:
    """Write the 52 curves as JSON: ``{"format", "fps", "frames", "duration", "names", "times",
    "curves": {name: [values]}, "meta"}``.

    ``names`` are the ARKit names (camelCase, the morph-target / blend-shape names of ARKit-ready
    rigs: Ready Player Me, VRM "perfect sync", MetaHuman's ARKit mapping); ``times[k] = k / fps``.

    Example:
        >>> write_curves_json(est.predict("speech.wav"), "take.json")   # doctest: +SKIP
    """
    values, rate = _prepared(track, fps, track_fps)
    n = len(values)
    doc = {"format": "speechface.curves/1", "fps": rate, "frames": n,
           "duration": round(n / rate, 6), "names": list(ARKIT52_NAMES),
           "times": [round(k / rate, 6) for k in range(n)],
           "curves": {name: np.round(values[:, j].astype(np.float64), decimals).tolist()
                      for j, name in enumerate(ARKIT52_NAMES)},
           "meta": {**_meta(track), "range": [0.0, 1.0],
                    "note": "ARKit blendshape weights 0-1; tongueOut is 0 for models trained on "
                            "the MediaPipe teacher"}}
    with atomic_write(path) as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def write_threejs_clip(track: Any, path: str | os.PathLike[str], *, fps: float | None = None,
                       track_fps: float | None = None, name: str = "speech",
                       decimals: int = 4) -> None:
    """Write a three.js ``AnimationClip`` in its JSON form (``AnimationClip.toJSON``).

    One ``NumberKeyframeTrack`` per blendshape, named ``.morphTargetInfluences[<name>]``: with a
    mesh whose ``morphTargetDictionary`` has the ARKit names, ``THREE.AnimationClip.parse(json)``
    and ``mixer.clipAction(clip).play()`` play it.

    Example:
        >>> write_threejs_clip(est.predict("speech.wav"), "clip.json")   # doctest: +SKIP
    """
    values, rate = _prepared(track, fps, track_fps)
    n = len(values)
    times = [round(k / rate, 6) for k in range(n)]
    tracks = [{"name": f".morphTargetInfluences[{nm}]", "type": "number", "times": times,
               "values": np.round(values[:, j].astype(np.float64), decimals).tolist()}
              for j, nm in enumerate(ARKIT52_NAMES)]
    doc = {"name": name, "duration": round(max(n - 1, 0) / rate, 6), "tracks": tracks,
           "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"speechface:{name}:{n}:{rate}")),
           "blendMode": 2500}  # THREE.NormalAnimationBlendMode
    with atomic_write(path) as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


_BLENDER_TEMPLATE = '''"""Blender script written by speechface {version}: keys ARKit blendshape shape keys.

{frames} frames at {fps:g} fps ({seconds:.2f} s) from {source}.

Run it in Blender (Text Editor > Run Script, or from a shell):

    blender scene.blend --python {script_name}                 # the active object
    blender scene.blend --python {script_name} -- --object Face
    blender -b --python {script_name} -- --demo --save out.blend   # a demo mesh with the 52 keys

Every mesh object (or the one named with --object) whose shape keys carry ARKit names gets one
keyframe per frame on each of them, from frame --start (default 1); names match ignoring case,
``_``/``.``/``-`` and ``_L``/``_R`` for Left/Right (``eyeBlinkLeft``, ``EyeBlinkLeft``,
``eye_blink_L``). The scene's frame rate and range are set to the take, and --audio FILE adds
the speech as a sound strip. The last line printed is ``SPEECHFACE_RESULT {{json}}``.
"""

import json
import re
import sys

import bpy

FPS = {fps!r}
NAMES = {names!r}
# one list of {frames} values (0-1) per name, frame k at time k / FPS
CURVES = {curves}
AUDIO = {audio!r}


def normalise(name):
    n = name.strip().lower()
    n = re.sub(r"[_.\\s-]+(l|left)$", "left", n)
    n = re.sub(r"[_.\\s-]+(r|right)$", "right", n)
    return re.sub(r"[^a-z0-9]", "", n)


WANTED = {{normalise(n): n for n in NAMES}}


def targets(object_name=None):
    """[(object, {{ARKit name: shape key}})] for the objects to animate."""
    if object_name:
        obj = bpy.data.objects.get(object_name)
        if obj is None:
            raise SystemExit("speechface: no object named %r" % object_name)
        objects = [obj]
    else:
        active = bpy.context.view_layer.objects.active if bpy.context.view_layer else None
        objects = [active] if active is not None and getattr(active.data, "shape_keys", None) \\
            else list(bpy.data.objects)
    found = []
    for obj in objects:
        keys = getattr(getattr(obj, "data", None), "shape_keys", None)
        if keys is None:
            continue
        match = {{}}
        for kb in keys.key_blocks:
            arkit = WANTED.get(normalise(kb.name))
            if arkit is not None and arkit not in match:
                match[arkit] = kb
        if match:
            found.append((obj, match))
    return found


def demo_object():
    """A UV sphere with one shape key per ARKit name (each moves the vertices a little)."""
    bpy.ops.mesh.primitive_uv_sphere_add(segments=16, ring_count=8)
    obj = bpy.context.active_object
    obj.name = "speechface_demo_face"
    obj.shape_key_add(name="Basis")
    for i, name in enumerate(NAMES):
        kb = obj.shape_key_add(name=name, from_mix=False)
        for v in kb.data:
            v.co.z += 0.01 * (1 + i % 5)
    return obj


def key(obj, match, start):
    keys = obj.data.shape_keys
    frames = list(range(start, start + len(next(iter(CURVES.values())))))
    for name, kb in match.items():
        values = CURVES[name]
        path = 'key_blocks["%s"].value' % kb.name
        fcurve = None
        try:  # fast path: one F-curve filled at once
            if keys.animation_data is None:
                keys.animation_data_create()
            if keys.animation_data.action is None:
                keys.animation_data.action = bpy.data.actions.new("speechface_" + obj.name)
            fcurves = keys.animation_data.action.fcurves
            fcurve = fcurves.find(path) or fcurves.new(data_path=path)
            fcurve.keyframe_points.clear()
            fcurve.keyframe_points.add(len(values))
            co = []
            for f, v in zip(frames, values):
                co += [float(f), float(v)]
            fcurve.keyframe_points.foreach_set("co", co)
            for p in fcurve.keyframe_points:
                p.interpolation = "LINEAR"
            fcurve.update()
        except (AttributeError, RuntimeError, TypeError):  # other Blender versions
            for f, v in zip(frames, values):
                kb.value = v
                kb.keyframe_insert("value", frame=f)
    return len(frames)


def main(argv):
    import argparse

    p = argparse.ArgumentParser(prog="{script_name}")
    p.add_argument("--object", default=None)
    p.add_argument("--start", type=int, default=1)
    p.add_argument("--audio", default=AUDIO)
    p.add_argument("--demo", action="store_true")
    p.add_argument("--save", default=None)
    args = p.parse_args(argv)
    if args.demo:
        demo_object()
    found = targets(args.object)
    if not found:
        raise SystemExit("speechface: no mesh with ARKit-named shape keys (select one, pass "
                         "--object NAME, or try --demo)")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = round(FPS), round(FPS) / FPS
    n = 0
    report = {{}}
    for obj, match in found:
        n = key(obj, match, args.start)
        report[obj.name] = {{"keyed": sorted(match),
                            "missing": sorted(set(NAMES) - set(match))}}
    scene.frame_start, scene.frame_end = args.start, args.start + n - 1
    if args.audio:
        try:
            seq = scene.sequence_editor_create()
            strips = getattr(seq, "strips", None) or seq.sequences
            strips.new_sound("speech", args.audio, 1, args.start)
        except (AttributeError, RuntimeError) as e:
            print("speechface: could not add the audio strip: %s" % e)
    if args.save:
        bpy.ops.wm.save_as_mainfile(filepath=args.save)
    print("SPEECHFACE_RESULT " + json.dumps({{"frames": n, "fps": FPS, "objects": report}}))


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [])
'''


def write_blender_script(track: Any, path: str | os.PathLike[str], *, fps: float | None = None,
                         track_fps: float | None = None, audio: str | None = None,
                         decimals: int = 4) -> None:
    """Write a self-contained Blender Python script that keys ARKit-named shape keys.

    The values are embedded in the script (``NAMES``, ``CURVES``, ``FPS``); it needs nothing
    but Blender (tested headless with Blender 3.4, ``blender -b --python take.py -- --demo``).
    See the script's docstring for its options (``--object``, ``--start``, ``--audio``,
    ``--demo``, ``--save``).

    Args:
        track: see :func:`arkit_track`.
        path: the ``.py`` to write.
        fps: key rate (default: the track's, 25); Blender's scene rate is set to it.
        audio: a sound file the script adds as a strip at the first keyed frame (optional).

    Example:
        >>> write_blender_script(est.predict("speech.wav"), "take.py", audio="speech.wav")  # doctest: +SKIP
    """
    from ..version import __version__

    values, rate = _prepared(track, fps, track_fps)
    curves = ",\n    ".join(
        f"{name!r}: {np.round(values[:, j].astype(np.float64), decimals).tolist()!r}"
        for j, name in enumerate(ARKIT52_NAMES))
    meta = _meta(track)
    source = (f"model {meta['model']} ({meta['source_space']})" if meta else "an ARKit-52 array")
    text = _BLENDER_TEMPLATE.format(
        version=__version__, frames=len(values), fps=rate, seconds=len(values) / rate,
        source=source, script_name=Path(path).name, names=list(ARKIT52_NAMES),
        curves="{\n    " + curves + ",\n}", audio=None if audio is None else str(audio))
    with atomic_write(path) as f:
        f.write(text)


def export_track(track: Any, path: str | os.PathLike[str], format: str, *,
                 fps: float | None = None, audio: str | None = None) -> None:
    """Write ``track`` in one of :data:`FORMATS` (``csv`` needs a Prediction).

    Example:
        >>> export_track(est.predict("speech.wav"), "take.csv", "livelink")   # doctest: +SKIP
    """
    if format == "csv":
        from ..core.results import Prediction

        if not isinstance(track, Prediction):
            raise ValueError("format 'csv' writes a Prediction (arrays: use livelink or json)")
        if fps is not None and float(fps) != track.fps:
            raise ValueError("format 'csv' keeps the model's 25 fps; --fps applies to the "
                             "livelink, json, threejs and blender formats")
        track.to_csv(path)
    elif format == "livelink":
        write_livelink_csv(track, path, fps=fps)
    elif format == "json":
        write_curves_json(track, path, fps=fps)
    elif format == "threejs":
        write_threejs_clip(track, path, fps=fps, name=Path(path).stem)
    elif format == "blender":
        write_blender_script(track, path, fps=fps, audio=audio)
    else:
        raise ValueError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
