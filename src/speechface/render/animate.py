"""Animate a still face photo with speech: speech -> AUs / emotions -> translated face frames.

:func:`animate` runs the whole pipeline:

1. load the photo (:func:`~speechface.render.face.load_image`) and find the face
   (:func:`~speechface.render.face.find_face`; the largest one unless ``face_index`` is given);
2. load the speech (16 kHz mono) and predict one condition per 25 fps frame with a speech
   estimator (:class:`~speechface.AUEstimator` by default);
3. transform the conditions (:mod:`speechface.spaces.transforms`): convert them to the
   translator's space if needed (emotion8 -> au17 with ``speechface.spaces.emotion_to_au``),
   smooth them over time, widen their movement and scale them by ``strength`` (landmarks:
   retarget them onto the photo's own points);
4. crop the face once (:func:`~speechface.render.face.crop_face`), translate it once per frame in
   batches (:meth:`~speechface.render.translators.Translator.translate`) and paste every result back
   into the full-resolution photo (:func:`~speechface.render.face.paste_face`; only the face region
   changes). The frames are rendered a batch at a time while they are written (or iterated),
   so memory does not grow with the speech's length.

The result is an :class:`~speechface.render.result.Animation`: ``.frames`` (N, H, W, 3) uint8 at ``.fps``, the speech as
``.audio`` and the estimator output as ``.conditions``; ``.save("out.mp4")`` writes an H.264 +
AAC video with the speech (``.gif`` / ``.webp`` without sound) through the writers of
:mod:`speechface.render.video`.

Command line (:mod:`speechface.cli.animate`)::

    speechface animate speech.wav photo.jpg -o talking.mp4 [--smoothing 1.5] [--side-by-side]

Example:
    >>> from speechface.render.animate import animate              # doctest: +SKIP
    >>> anim = animate("speech.wav", "photo.jpg")           # doctest: +SKIP
    >>> anim.frames.shape, anim.fps                         # doctest: +SKIP
    ((221, 512, 512, 3), 25.0)
    >>> anim.save("talking.mp4")                            # doctest: +SKIP

The photo keeps its full resolution: only the face crop is generated, and every pixel outside
it stays bit-identical to the photo.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..core.errors import ModelError, NoFaceError
from ..spaces.space import get_space
from ..spaces.transforms import (
    convert_space,
    expand_dynamics,
    retarget_landmarks,
    scale_conditions,
    smooth_conditions,
)
from .face import (
    DEFAULT_FEATHER,
    DEFAULT_MARGIN,
    crop_face,
    detect_faces,
    load_image,
    native_logs_hidden,
    select_face,
)
from .face import source_label as _label
from .result import Animation, FrameComposer

__all__ = ["animate", "dynamics_gain", "hold_utterance_expression", "MAX_FACE_SIDE"]

#: The face crop is translated at most at this side in pixels (bigger faces are resized down for
#: the network's input-keeping composition and up again when pasted; bounds memory and time).
MAX_FACE_SIDE = 768
AUDIO_RATE = 16000
_BLOCK_SECONDS = 60.0  # speech longer than this is predicted block by block
_BATCH_BYTES = 256 << 20  # rendered faces held at once (at most; one face always)


def dynamics_gain(estimator: Any) -> np.ndarray | None:
    """The per-dimension gain that restores an estimator's natural range of movement, if any.

    Regression models predict over-smoothed tracks: their variance within an utterance is far
    below that of the targets (the "global variance" problem of statistical speech synthesis,
    Toda & Tokuda 2007). A model trained by this library may record
    ``info["dynamics_gain"]``: per dimension, the median within-clip standard deviation of the
    training targets divided by that of its own predictions on the same clips (at least 1,
    at most 8; see ``docs/model-quality.md``). :func:`animate` applies it by default
    (``dynamics=True``) through :func:`~speechface.spaces.transforms.expand_dynamics`; ``predict`` never does.

    Returns:
        ``(dim,)`` float32, or None when the model records no gain.
    """
    info = getattr(estimator, "info", None) or {}
    gain = info.get("dynamics_gain")
    if gain is None:
        return None
    g = np.asarray(gain, dtype=np.float32)
    sp = getattr(estimator, "space", None)
    if g.ndim != 1 or (sp is not None and len(g) != sp.dim) or not np.isfinite(g).all():
        raise ModelError(f"estimator {getattr(estimator, 'name', '?')}: info['dynamics_gain'] "
                         f"must be {getattr(sp, 'dim', 'dim')} finite numbers")
    return g


def _own_landmarks(face: np.ndarray) -> np.ndarray:
    """The 68 points of the face in a crop, normalised to the crop (MediaPipe teacher)."""
    from ..teachers.mediapipe import MediaPipeTeacher, landmarks68_from_478

    with native_logs_hidden(), MediaPipeTeacher(running_mode="image") as teacher:
        obs = teacher.observe(np.ascontiguousarray(face))
    if not obs.found:
        raise NoFaceError("the landmark path needs the face's own landmarks, but MediaPipe "
                          "finds no face in the crop")
    return landmarks68_from_478(obs.landmarks, (0.0, 0.0, 1.0, 1.0))


def _frame_values(estimator: Any, wave: np.ndarray, dynamics: bool, co: Any = None
                  ) -> tuple[Any, np.ndarray, np.ndarray | None, Any]:
    """``(prediction, per-frame values, gain, co-prediction)``: utterance-level outputs held
    for every frame, the estimator's recorded dynamics gain applied when ``dynamics``; the
    prediction of a co-driver ``co`` (a second estimator, else None), from the same features
    when both models use the same extractor (computed once)."""
    # over a minute: in blocks (speechface.speech.longform; same values up to float32 rounding), so
    # a long speech does not hold every layer's activations at once
    long = len(wave) > _BLOCK_SECONDS * AUDIO_RATE
    chunk = _BLOCK_SECONDS if long else None
    co_pred = None
    if co is not None and co.extra_config()["feature"] == estimator.extra_config()["feature"]:
        import torch

        from ..speech import longform

        with estimator.eval_mode():
            if long:
                feats = torch.cat(list(longform.feature_blocks(estimator.features, wave,
                                                               AUDIO_RATE, chunk)))
            else:
                feats = estimator.features(estimator.load(wave, AUDIO_RATE).to(
                    estimator.device)).T
        pred, co_pred = estimator.predict_features(feats), co.predict_features(feats)
    else:
        pred = estimator.predict(wave, AUDIO_RATE, chunk_seconds=chunk)
        if co is not None:
            co_pred = co.predict(wave, AUDIO_RATE, chunk_seconds=chunk)
    values = np.asarray(pred.values, dtype=np.float32)
    n = max(1, int(len(wave) * float(pred.fps) // AUDIO_RATE))
    if not pred.frame_level or len(values) == 1:  # utterance-level: hold it for every frame
        values = np.repeat(values[:1], n, axis=0)
    gain = dynamics_gain(estimator) if dynamics else None
    if gain is not None and len(values) > 1:
        values = expand_dynamics(values, pred.space, gain)
    return pred, values, gain, co_pred


def _fit_length(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` cut or padded (last row repeated) to ``n`` rows."""
    if len(values) >= n:
        return values[:n]
    return np.concatenate([values, np.repeat(values[-1:], n - len(values), axis=0)])


def _landmark_targets(values: np.ndarray, own: np.ndarray, smoothing: float,
                      expressiveness: float, strength: float) -> np.ndarray:
    """Predicted landmarks -> targets on the photo's own points (smoothed, widened, scaled)."""
    cond = smooth_conditions(values, float(smoothing))
    cond = expand_dynamics(cond, "landmarks68", float(expressiveness))
    cond = retarget_landmarks(cond, own)
    return own + np.float32(strength) * (cond - own)


def _check_lip_framing(lip_translator: Any, margin: float, shift: float, *,
                       quiet: bool = False) -> bool:
    """The lip-sync translator works on the main translator's crop: their framing must agree.

    Returns True when it does; otherwise raises ModelError (``quiet``: returns False).
    """
    if not lip_translator.space.points:
        raise ModelError(f"lipsync needs a landmarks68 translator, got "
                         f"{lip_translator.space.name}")
    info = getattr(lip_translator, "info", None) or {}
    lm, ls = float(info.get("crop_margin", DEFAULT_MARGIN)), float(info.get("crop_shift", 0.0))
    if abs(lm - margin) > 0.02 or abs(ls - shift) > 0.02:
        if quiet:
            return False
        raise ModelError(f"lipsync translator {getattr(lip_translator, 'name', '?')} was trained "
                         f"on crops with margin {lm:g} / shift {ls:g}, the face translator's "
                         f"crop has {margin:g} / {shift:g}; pass lipsync=False or a matching "
                         f"translator")
    return True


def _default_models(space: str | None, translator: Any, estimator: Any) -> tuple[Any, Any]:
    """Fill in the packaged translator / estimator for ``space`` (see :func:`animate`)."""
    from ..pretrained import DEFAULT_MODELS

    if translator is None:
        from .translators import Translator

        if space is not None and get_space(space).points and \
                f"translator_{space}" not in DEFAULT_MODELS:
            raise ModelError("this version packages no landmark translator; train one with "
                             "configs/landmark_warp_faces64.yaml and pass it as translator= "
                             "(command line: --translator)")
        key = f"translator_{space}" if space and f"translator_{space}" in DEFAULT_MODELS \
            else "translator"
        try:
            translator = Translator.from_pretrained(DEFAULT_MODELS.get(key))
        except ModelError as e:
            raise ModelError(f"{e} as translator= (command line: --translator)") from e
    if estimator is None:
        from ..speech.model import estimator_class as _class_for

        want = space or translator.space.name
        try:
            estimator = _class_for(want).from_pretrained(DEFAULT_MODELS.get(f"animate_{want}"))
        except ModelError as e:
            raise ModelError(f"{e} as estimator= (command line: --model)") from e
    return translator, estimator


# --------------------------------------------------------------------------- animate
def hold_utterance_expression(cond: np.ndarray, wave: np.ndarray, model: Any = True,
                              space: Any = "au17") -> np.ndarray:
    """Add one utterance-level AU vector, predicted from the speech, to every frame.

    ``model`` is an utterance-level au17 estimator (``lstm_mfcc``: one vector per utterance),
    a model name or folder, or True for ``DEFAULT_MODELS["utterance_au17"]``. Every AU except
    the articulation channels (AU25, AU26: the speech moves them) becomes
    ``clip(frame value + utterance value, 0, 5)``, so the face holds the expression the voice
    suggests for the whole utterance while the mouth keeps following the speech.

    Args:
        cond: ``(frames, 17)`` AU conditions.
        wave: 16 kHz mono speech.

    Returns:
        The new ``(frames, 17)`` conditions.

    Raises:
        ModelError: the model is not an utterance-level au17 model, or the space is not au17.

    Example:
        >>> held = hold_utterance_expression(cond, wave, True)           # doctest: +SKIP
    """
    from ..pretrained import DEFAULT_MODELS
    from ..spaces.emotion_control import ARTICULATION
    from ..speech.model import SpeechEstimator

    name = getattr(space, "name", space)
    if name != "au17":
        raise ModelError(f"hold_expression works on au17 conditions, not {name}")
    if model is True:
        model = DEFAULT_MODELS["utterance_au17"]
    est = model if isinstance(model, SpeechEstimator) else SpeechEstimator.from_pretrained(model)
    if est.space.name != "au17" or getattr(est.network, "frame_level", True):
        raise ModelError(f"hold_expression needs an utterance-level au17 model (lstm_mfcc), got "
                         f"{est.network.arch!r} on {est.space.name}")
    vec = np.asarray(est.predict(wave, sample_rate=AUDIO_RATE).values, np.float32).reshape(-1, 17)
    vec = vec.mean(0)
    labels = list(est.space.labels)
    keep = [i for i, lab in enumerate(labels) if lab not in ARTICULATION["au17"]]
    out = np.array(cond, dtype=np.float32, copy=True)
    out[:, keep] = np.clip(out[:, keep] + vec[keep], 0.0, 5.0)
    return out


def _mouth_options(mouth_sync: Any) -> Any:
    """``animate``'s ``mouth_sync`` argument -> a MouthSync, or None when off."""
    from .mouth_sync import MouthSync

    if mouth_sync is False:
        return None
    if mouth_sync is None or mouth_sync is True:
        return MouthSync()
    if isinstance(mouth_sync, MouthSync):
        return mouth_sync
    raise ValueError(f"mouth_sync must be True, False or a MouthSync, got {mouth_sync!r}")


def _co_driver(mouth: Any, user_estimator: Any, device: Any) -> Any:
    """The blendshapes52 estimator whose jawOpen joins the mouth track (or None)."""
    if mouth is None or not mouth.driver or mouth.co_driver is False:
        return None
    co = mouth.co_driver
    if co is None:
        if user_estimator is not None:
            return None      # a caller's own speech model drives the mouth alone
        from ..pretrained import DEFAULT_MODELS

        co = DEFAULT_MODELS.get("blendshapes52")
        if co is None:
            return None
    if not hasattr(co, "predict"):
        from ..speech.model import BlendshapeEstimator

        co = BlendshapeEstimator.from_pretrained(co)
    if co.space.name != "blendshapes52":
        raise ModelError(f"the mouth co-driver must predict blendshapes52, "
                         f"{getattr(co, 'name', '?')} predicts {co.space.name}")
    return co.to(device) if device is not None else co


def _sync_mouth(values: np.ndarray, co_pred: Any, mouth: Any, model: str
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Steps 1-2 of the mouth sync on au17 values: one driver track, real mouths' spread, and
    the other lip AUs slowed to the pace of expression."""
    from ..spaces.space import ARKIT52_NAMES
    from .mouth_sync import mouth_track, normalize_mouth, steady_lips

    jaw = None
    if co_pred is not None and mouth.driver:
        jaw = _fit_length(np.asarray(co_pred.values, np.float32),
                          len(values))[:, ARKIT52_NAMES.index("jawOpen")]
    track = mouth_track(values, jaw) if mouth.driver else None
    if mouth.smoothing > 0:
        base = values[:, 15] if track is None else track
        track = smooth_conditions(np.asarray(base, np.float32)[:, None], mouth.smoothing)[:, 0]
    out = normalize_mouth(values, track) if mouth.spread else values
    if track is not None and not mouth.spread:   # the driver alone keeps the model's level
        out = normalize_mouth(values, track, target={
            k: (float(np.median(values[:, i])), float(values[:, i].std()))
            for k, i in (("AU25", 14), ("AU26", 15))}, max_gain=1.0)
    if mouth.lips:   # the lips' up-and-down AUs at the pace of expression (< 0: an error)
        out = steady_lips(out, mouth.lips)
    info = {"driver": [model] + ([co_pred.model] if jaw is not None else []) if mouth.driver
            else None, "spread": bool(mouth.spread), "lips": float(mouth.lips)}
    return out, info


def animate(audio: Any, image: Any, estimator: Any = None, translator: Any = None, *,
            sample_rate: int | None = None, space: str | None = None, smoothing: float = 0.0,
            strength: float = 1.0, expressiveness: float = 1.0, dynamics: bool = True,
            side_by_side: bool = False, lipsync: Any = None,
            face_index: int | None = None, margin: float | None = None,
            feather: float = DEFAULT_FEATHER, batch_size: int = 16, fast: Any = None,
            progress: bool = True, emotion: Any = None, intensity: Any = 1.0,
            hold_expression: Any = None, mouth_sync: Any = True,
            device: Any = None) -> Animation:
    """Animate the face in a photo with speech.

    Args:
        audio: speech: a file path (wav, flac, ogg, mp3) or a ``(samples,)`` array / tensor
            (give ``sample_rate``); any rate, resampled to 16 kHz.
        image: the photo: a path, PIL image or ``(H, W, 3)`` array (see
            :func:`~speechface.render.face.load_image`).
        estimator: a :class:`~speechface.speech.SpeechEstimator` (default: the packaged one for
            ``space``).
        translator: a :class:`~speechface.render.translators.Translator` (default: the packaged one,
            ``Translator.from_pretrained()``).
        sample_rate: rate of an array ``audio``.
        space: the conditioning space to animate with when a model is not given:
            ``"au17"`` (default), ``"emotion8"`` or ``"landmarks68"`` picks the packaged
            estimator for it (``DEFAULT_MODELS["animate_<space>"]`` if there is one, else the
            space's default) and, for ``landmarks68``, the packaged landmark translator. An
            emotion8 estimator drives an au17 translator through
            ``speechface.spaces.emotion_to_au`` (see
            :func:`~speechface.spaces.transforms.convert_space`); other mismatches are a
            ModelError. With a ``landmarks68`` translator the predicted
            motion is moved onto the photo's own landmarks (:func:`~speechface.spaces.transforms.retarget_landmarks`).
        smoothing: temporal smoothing of the conditions: the standard deviation in frames
            (40 ms each) of a centred Gaussian, see :func:`~speechface.spaces.transforms.smooth_conditions` (0 = off).
        strength: expression strength relative to neutral, see :func:`~speechface.spaces.transforms.scale_conditions`
            (0 = neutral face, 1 = as predicted, 2 = exaggerated).
        expressiveness: widens the predicted movement around the utterance mean, see
            :func:`~speechface.spaces.transforms.expand_dynamics` (1 = as predicted).
        dynamics: apply the estimator's recorded ``dynamics_gain`` (see :func:`dynamics_gain`;
            restores the range of movement its training targets had). No effect for models
            that record none.
        side_by_side: frames show the input photo on the left and the animation on the right.
        lipsync: mouth motion for ``au17`` / ``emotion8`` animations: each rendered face is
            also moved onto landmark targets predicted from the speech (the landmark estimator
            and a ``landmarks68`` warping translator, as in ``space="landmarks68"``). None (the
            default) = on when neither ``translator`` nor an explicit landmark path is given,
            the translator is not a full-resolution renderer (the default ``mesh_warp``
            moves the mouth itself) and the packaged landmark translator exists (and is
            skipped if ``margin`` asks for another framing than its own); True = the packaged one; a ``landmarks68``
            :class:`~speechface.render.translators.Translator`, model name or folder = that one;
            False = off. Its crop framing must match the main translator's (else ModelError).
        face_index: which face to animate, counted left to right (0 = leftmost); None = the
            largest face.
        margin: face crop margin (see :func:`~speechface.render.face.crop_face`); None = the
            translator's ``info["crop_margin"]`` if it records one, else
            :data:`~speechface.render.face.DEFAULT_MARGIN` (0.35). The crop is also moved up by the
            translator's ``info["crop_shift"]`` (0 if absent), the framing it was trained on.
        feather: soft paste-back edge as a fraction of the crop side (see
            :func:`~speechface.render.face.paste_face`).
        batch_size: frames per translator call.
        fast: speed options for the translator: a :class:`~speechface.render.fastpath.FastOptions`, or
            True for :meth:`~speechface.render.fastpath.FastOptions.fastest` (bf16 where the CPU has
            it; output within a few pixel levels of fp32, see ``benchmarks/bench_animate.py``).
            None/False: plain fp32.
        progress: show a progress bar (tqdm, on stderr) while the frames are rendered.
        emotion: put an emotion on the face (au17 translators): a name (``"happiness"``), a
            ``{name: weight}`` mix or an EMOTION8 distribution per frame; its FACS prototype is
            added to the speech-driven AUs except the jaw/lips-part channels (AU25, AU26), which
            keep the speech (:func:`speechface.spaces.emotion_control.apply_emotion`). None = off.
        intensity: the emotion's strength: 1 = the prototype at FACS level C (AU 3); a number
            or a per-frame curve.
        hold_expression: hold one facial expression for the whole utterance, predicted from the
            speech by an utterance-level au17 model (the MFCC-LSTM source's system), as in
            :func:`hold_utterance_expression`: True = the packaged
            ``DEFAULT_MODELS["utterance_au17"]``; a model, name or folder = that one; None/False
            = off. The expression is added to every frame except the jaw/lips-part channels,
            which keep the speech.
        mouth_sync: make the jaw / lips-part track (``AU25``, ``AU26``) of an au17 animation
            move like a real mouth (:mod:`speechface.render.mouth_sync`): True (default) = one mouth
            track from the speech model's ``AU25`` / ``AU26`` and, when ``estimator`` is not
            given, the packaged ARKit model's ``jawOpen`` on the same features; moved to the
            median and spread real mouths have in the training speakers' clips; then through
            the inverse of the translator's jaw response on this photo (read back by
            MediaPipe). A :class:`~speechface.render.mouth_sync.MouthSync` chooses the steps; False =
            off (the model's own ``AU25`` / ``AU26``). No effect on emotion8 or landmark
            animations. ``smoothing``, ``expressiveness`` and ``strength`` apply after it.
        device: torch device the models run on (default: where they are; the packaged
            defaults load on the CPU).

    The frames are rendered lazily, ``batch_size`` at a time, when the animation is saved or
    iterated (:meth:`Animation.save`, :meth:`Animation.iter_frames`): memory is bounded by one
    batch of face crops and one full frame, whatever the speech's length.

    Returns:
        :class:`Animation` with one frame per estimator frame (25 fps: frame n at n / 25 s),
        ``audio`` (16 kHz float32), ``conditions`` (the Prediction) and ``driving`` (the values
        given to the translator).

    Raises:
        ImageError / NoFaceError: the photo cannot be read, has no face, or ``face_index`` is out
            of range (the message says how many faces there are).
        AudioError: the speech cannot be read.
        ModelError: no packaged default model, or spaces that cannot be converted.

    Example:
        >>> from speechface import AUEstimator                          # doctest: +SKIP
        >>> from speechface.render.translators import Translator               # doctest: +SKIP
        >>> anim = animate("speech.wav", "photo.jpg", AUEstimator.from_pretrained(),
        ...                Translator.from_pretrained(), smoothing=1.5)  # doctest: +SKIP
        >>> anim.save("talking.mp4")                                    # doctest: +SKIP
    """
    from ..audio.waveform import load_audio

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be a finite number of frames >= 0, got {smoothing!r}")
    if not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")

    # inputs first: the most likely user errors surface before any model work
    name = _label(image, None)
    photo = load_image(image)
    faces = detect_faces(photo)
    box = select_face(faces, face_index, name=name)
    index = next(i for i, f in enumerate(faces) if f is box)
    wave = load_audio(audio, sample_rate, target_rate=AUDIO_RATE).numpy()

    if space is not None and space not in ("au17", "emotion8", "landmarks68"):
        raise ValueError(f"space must be au17, emotion8 or landmarks68, got {space!r}")
    user_translator, user_estimator = translator, estimator
    translator, estimator = _default_models(space, translator, estimator)
    if device is not None:
        translator, estimator = translator.to(device), estimator.to(device)

    mouth = _mouth_options(mouth_sync)
    if mouth is not None and (translator.space.name != "au17" or estimator.space.name != "au17"):
        mouth = None        # the mouth sync works on au17 conditions from an au17 model
    co = _co_driver(mouth, user_estimator, device)
    pred, values, gain, co_pred = _frame_values(estimator, wave, dynamics, co)
    fps = float(pred.fps)
    landmark_path = translator.space.points
    if landmark_path and not get_space(pred.space).points:
        raise ModelError(f"the landmark translator needs a landmarks68 estimator, got {pred.space}")
    mouth_info: dict[str, Any] | None = None
    if mouth is not None:   # the mouth: one driver track, real mouths' spread (mouth_sync.py)
        values, mouth_info = _sync_mouth(values, co_pred, mouth, pred.model)
    if not landmark_path:
        cond = convert_space(values, pred.space, translator.space)
        cond = smooth_conditions(cond, float(smoothing))
        cond = expand_dynamics(cond, translator.space, float(expressiveness))
        cond = scale_conditions(cond, translator.space, float(strength))
    if hold_expression is not None and hold_expression is not False:
        if landmark_path:
            raise ValueError("hold_expression needs an au17 translator, not a landmark path")
        cond = hold_utterance_expression(cond, wave, hold_expression, translator.space)
    if emotion is not None:  # the emotion's FACS prototype on the speech-driven AUs
        from ..spaces.emotion_control import apply_emotion

        cond = apply_emotion(None if landmark_path else cond, emotion, intensity,
                             space=translator.space)  # landmarks68: a clear ValueError
    if lipsync is not None and lipsync is not False and landmark_path:
        raise ValueError("lipsync adds landmark-driven mouth motion to au17 / emotion8 "
                         "animations; a landmarks68 animation has it already")

    t_info = getattr(translator, "info", None) or {}
    margin_given = margin is not None
    if margin is None:
        margin = float(t_info.get("crop_margin", DEFAULT_MARGIN))
    shift = float(t_info.get("crop_shift", 0.0))
    crop = crop_face(photo, box, margin=margin, shift=shift)
    full_res = bool(getattr(getattr(translator, "network", None), "full_resolution", False))
    if crop.side > MAX_FACE_SIDE and not full_res:
        crop = crop_face(photo, box, margin=margin, size=MAX_FACE_SIDE, shift=shift)
    if landmark_path:  # the speech's motion on the photo's own points, scaled by ``strength``
        cond = _landmark_targets(values, _own_landmarks(crop.image), smoothing, expressiveness,
                                 strength)
    if mouth is not None and mouth.photo:   # the renderer's jaw response on this photo, inverted
        from .mouth_sync import apply_jaw_transfer, jaw_transfer

        levels, read = jaw_transfer(translator, crop.image, base=cond.mean(0))
        cond = apply_jaw_transfer(cond, levels, read, max_gain=mouth.photo_max_gain)
        mouth_info = {**(mouth_info or {}), "photo_response": [round(float(v), 3) for v in read]}
    lips = None
    auto = lipsync is None
    if auto:   # the default pipeline gets the packaged lip-sync stage
        from ..pretrained import DEFAULT_MODELS

        lipsync = user_translator is None and not landmark_path and not full_res and \
            "translator_landmarks68" in DEFAULT_MODELS
    if lipsync is not False:
        lip_tr = None if isinstance(lipsync, bool) else lipsync
        if isinstance(lipsync, (str, os.PathLike)):
            from .translators import Translator

            lip_tr = Translator.from_pretrained(lipsync)
        lip_tr, lip_est = _default_models("landmarks68", lip_tr, None)
        if device is not None:
            lip_tr, lip_est = lip_tr.to(device), lip_est.to(device)
        # automatic lip-sync steps aside for a crop margin the caller chose
        if not _check_lip_framing(lip_tr, margin, shift, quiet=auto and margin_given):
            lipsync = False
    if lipsync is not False:
        _, lip_values, _, _ = _frame_values(lip_est, wave, dynamics)
        lip_values = _fit_length(lip_values, len(cond))
        lips = (lip_tr, _landmark_targets(lip_values, _own_landmarks(crop.image), smoothing,
                                          expressiveness, strength))

    fast_options = None
    if fast and not full_res:   # a full-resolution renderer has no network to speed up
        from .fastpath import FastOptions
        from .fastpath import translate as fast_translate

        fast_options = FastOptions.fastest() if fast is True else fast
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cond), desc="animate", unit="frame", leave=False)

    def render(start: int, stop: int) -> np.ndarray:
        """Faces of frames start..stop-1: translated (and lip-synced) in one batch."""
        if fast_options is None:
            faces = translator.translate(crop.image[None], cond[start:stop],
                                         batch_size=batch_size)
        else:
            faces = fast_translate(translator, crop.image[None], cond[start:stop], fast_options)
        if lips is not None:  # the mouth: move the rendered faces onto the lip targets
            faces = lips[0].translate(faces, lips[1][start:stop], batch_size=batch_size)
        if bar is not None:
            bar.update(stop - start)
            if stop >= len(cond):
                bar.close()
        return np.asarray(faces, dtype=np.uint8)

    # frames rendered per step: batch_size, fewer when the crops are big (a full-resolution
    # renderer on a huge photo), so a step holds at most about _BATCH_BYTES of faces
    per_step = max(1, min(batch_size, _BATCH_BYTES // max(1, 3 * crop.size * crop.size)))
    source = FrameComposer(photo, crop, render, len(cond), per_step, feather, side_by_side)
    info = {"estimator": pred.model, "estimator_pretrained": bool(pred.pretrained),
            "translator": getattr(translator, "name", type(translator).__name__),
            "translator_pretrained": bool(getattr(translator, "pretrained", False)),
            "space": translator.space.name, "smoothing": float(smoothing),
            "lipsync": None if lips is None else getattr(lips[0], "name", type(lips[0]).__name__),
            "dynamics_gain": None if gain is None else [round(float(g), 3) for g in gain],
            "strength": float(strength), "expressiveness": float(expressiveness),
            "emotion": emotion if emotion is None or isinstance(emotion, str) else "custom",
            "intensity": float(intensity) if np.ndim(intensity) == 0 else "curve",
            "margin": float(margin), "feather": float(feather), "mouth_sync": mouth_info}
    return Animation(source, fps=fps, audio=wave, sample_rate=AUDIO_RATE, conditions=pred,
                     driving=cond, face=box, face_index=index, n_faces=len(faces), info=info)
