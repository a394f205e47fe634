"""Stage 4, rendering: a face photo + conditions per frame -> an animated video.

In: a photo and a condition track (from :mod:`speechface.speech` through
:mod:`speechface.spaces`). Out: face frames pasted back into the photo, encoded as a video.

- :mod:`~speechface.render.face`: load a photo, find and crop the face, paste it back;
- :mod:`speechface.render.translators`: the registered translators (``mesh_warp``,
  ``ganimation``, ``landmark_gan``, ``landmark_warp``) and ``Translator``;
  :mod:`~speechface.render.fastpath`: batched, bf16 translation;
- the mesh renderer's geometry and fit: :mod:`~speechface.render.mesh` (topology, pose
  normalisation, AU <-> blendshape scores), :mod:`~speechface.render.tracks` (teacher tracks of
  clips), :mod:`~speechface.render.fit` (``python -m speechface.render.fit``);
- :mod:`~speechface.render.video`: the video reader and writer;
- :mod:`~speechface.render.animate`: the stages wired together (``speechface.animate``);
  :mod:`~speechface.render.result`: the ``Animation`` it returns (frames composed on demand);
  :mod:`~speechface.render.mouth_sync`: the mouth track of the default animation.
"""

from .mesh import ANCHORS, au17_to_blendshapes, mesh_topology, similarity

__all__ = ["ANCHORS", "au17_to_blendshapes", "mesh_topology", "similarity"]
