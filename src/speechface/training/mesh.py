"""``speechface train mesh``: the mesh renderer's fit (:func:`speechface.render.fit.fit_mesh`)
in the training command table. The fit is closed-form (ridge regression on MediaPipe tracks,
then closed-loop gains), so it does not run the engine's loop.

Example:
    >>> from speechface.training import TRAIN_COMMANDS
    >>> "mesh" in TRAIN_COMMANDS
    True
"""

from __future__ import annotations

from ..render.fit import MeshFitConfig, fit_mesh
from .config import train_command

__all__ = ["MeshFitConfig", "fit_mesh"]

train_command("mesh", MeshFitConfig, example="grid_every=10 cache=/tmp/speechface_tracks",
              help="fit the mesh renderer's blendshape displacement basis on talking-face "
                   "clips (the default animation renderer)")(fit_mesh)
