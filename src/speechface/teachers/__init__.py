"""Teachers: models that label faces in images and video, for training targets and evaluation.

In: video frames or face crops. Out: per-frame face targets.

- :class:`MediaPipeTeacher` (``[face]`` extra): MediaPipe FaceLandmarker blendshapes and mesh,
  with :func:`blendshapes_to_au17` (a documented AU *proxy*, recorded as :data:`PROXY_NAME`) and
  :func:`landmarks68_from_478` (the iBUG 68 points normalised to the face box);
- :mod:`speechface.teachers.expression`: facial-expression recognisers (face crop -> EMOTION8,
  registry ``EXPRESSION``), the image-side emotion teacher.

Example:
    >>> from speechface.teachers import MediaPipeTeacher   # doctest: +SKIP
    >>> with MediaPipeTeacher() as t:                       # doctest: +SKIP
    ...     track = t.observe_video("talk.mp4")
"""

from .mediapipe import (
    AU_FROM_BLENDSHAPES,
    BLENDSHAPE_NAMES,
    FACE_LANDMARKER_URL,
    MP_TO_IBUG68,
    PROXY_NAME,
    FaceObservation,
    MediaPipeTeacher,
    TeacherTrack,
    au17_to_blendshapes,
    blendshape_au_matrix,
    blendshapes_to_au17,
    landmarks68_from_478,
    resolve_face_landmarker,
    stable_face_boxes,
)

__all__ = [
    "AU_FROM_BLENDSHAPES",
    "BLENDSHAPE_NAMES",
    "FACE_LANDMARKER_URL",
    "MP_TO_IBUG68",
    "PROXY_NAME",
    "FaceObservation",
    "MediaPipeTeacher",
    "TeacherTrack",
    "au17_to_blendshapes",
    "blendshape_au_matrix",
    "blendshapes_to_au17",
    "landmarks68_from_478",
    "resolve_face_landmarker",
    "stable_face_boxes",
]
