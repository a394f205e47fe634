"""The mesh renderer's geometry and its fitting (the renderer itself is the ``mesh_warp``
translator, :class:`speechface.translators.MeshWarpRenderer`).

- :mod:`speechface.render.mesh`: MediaPipe mesh topology, pose normalisation, AU <-> blendshape
  scores;
- :mod:`speechface.render.tracks`: per-frame teacher tracks (mesh + blendshapes) of clips;
- :mod:`speechface.render.fit`: the displacement basis fitted on talking-face clips
  (``python -m speechface.render.fit``).
"""

from .mesh import ANCHORS, au17_to_blendshapes, mesh_topology, similarity

__all__ = ["ANCHORS", "au17_to_blendshapes", "mesh_topology", "similarity"]
