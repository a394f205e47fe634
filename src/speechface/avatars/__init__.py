"""Stage 4b, avatars: condition tracks -> files and live streams for avatar tools.

In: a ``Prediction`` (AUs, emotions, ARKit-52 blendshapes) or live speech. Out: Live Link Face
CSV, JSON curves, three.js clips, Blender scripts (:mod:`~speechface.avatars.exporters`), and one
frame every 40 ms as JSON lines, UDP or OSC (:mod:`~speechface.avatars.live`).
"""
