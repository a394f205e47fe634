"""The mesh renderer (registered as ``"mesh_warp"``): AUs or blendshapes -> the photo's own face,
moved at the photo's resolution.

It works on the photo's dense MediaPipe face mesh (468 points, 852 triangles), found once per
face crop:

1. **Motion.** A fitted basis gives, per blendshape score, the displacement of every mesh
   vertex in a pose-free canonical frame (:mod:`speechface.render.fit`, learned from the
   talking-face clips). A condition (17 AU proxy intensities, turned into blendshape scores by
   :func:`~speechface.render.mesh.au17_to_blendshapes`) minus the photo's own gives the
   displacement, rotated and scaled into the photo by the similarity that maps the canonical
   template onto the photo's mesh. The head does not move.
2. **Warp.** A piecewise-affine warp of the full-resolution crop: every target triangle samples
   its source triangle. The eyes are fans around their centres. The photo's mouth opening is
   split along its middle line into an upper and a lower strip that move with their lips (teeth
   a photo shows stay attached to their jaw). A band of triangles between the face outline and
   a static ring (``ring`` times the outline, around its centre) fades the motion out, so
   pixels outside the ring are copied unchanged, bit for bit.
3. **Mouth interior.** The gap that opens between the two strips is painted: a dark cavity in
   the photo's own lip hue and a tongue; when the photo's mouth is closed, also an upper-teeth
   band under the upper lip and a fainter lower one; shaded and anti-aliased.

Speed: one face mesh per photo (about 30 ms), then a few milliseconds per frame on one core
(``benchmarks/bench_render.py``).

:meth:`speechface.render.translators.Translator.translate` hands any network with
``full_resolution = True`` the uint8 crops directly (:meth:`MeshWarpRenderer.render`).

Example:
    >>> from speechface.render.translators import Translator                      # doctest: +SKIP
    >>> tr = Translator.from_pretrained("mesh_warp.au17-mediapipe")         # doctest: +SKIP
    >>> au = np.zeros((1, 17), np.float32); au[0, 15] = 4.0                 # doctest: +SKIP
    >>> tr.translate(face_crop, au).shape                                   # doctest: +SKIP
    (412, 412, 3)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...core.errors import ImageError, NoFaceError
from ...core.registry import TRANSLATORS
from .base import ImageTranslator

__all__ = ["MeshWarpRenderer", "build_renderer", "RIGHT_EYE", "LEFT_EYE"]

#: Eye loops (subject's right eye = image left), in order around the opening.
RIGHT_EYE: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145,
                              144, 163, 7)
LEFT_EYE: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374,
                             373, 390, 249)
_N_BS = 51          # blendshapes 1..51 (without "_neutral")
_V = 468
#: Inner-lip vertex pairs facing each other (upper, lower), left to right between the corners
#: 78 and 308.
MOUTH_PAIRS: tuple[tuple[int, int], ...] = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14),
                                            (312, 317), (311, 402), (310, 318), (415, 324))
_CORNERS = (78, 308)
#: The eye corners (canthi): fixed to the skull, no expression moves them.
_CANTHI = (33, 133, 362, 263)
#: Eyelids, subject's right eye (image left) then left: upper lid-margin vertices, the lower
#: margin vertex facing each, and the two rings of upper-lid skin above the margin.
_LIDS = {"Right": ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155),
                   (247, 30, 29, 27, 28, 56, 190), (113, 225, 224, 223, 222, 221, 189)),
         "Left": ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382),
                  (467, 260, 259, 257, 258, 286, 414), (342, 445, 444, 443, 442, 441, 413))}


@dataclass
class _Rig:
    """Everything about one photo's face that does not change from frame to frame."""

    shape: tuple[int, int]
    src: np.ndarray            # (V + extra, 2) source vertices: mesh, ring, 3 fan centres
    basis: np.ndarray          # (51, V * 2) displacement (pixels) per blendshape score
    ref_bs: np.ndarray         # (51,) the photo's own scores (through the AU proxy)
    triangles: np.ndarray      # (K, 3) mesh + band + fans
    region: tuple[int, int, int, int]   # x0, y0, x1, y1 of the ring's box (pixels)
    step: int
    grid: np.ndarray           # (gh, gw, 3) homogeneous pixel coords of the grid points
    inside: np.ndarray         # (rh, rw) bool: pixels of the region inside the static ring
    checked: np.ndarray        # (K2, 3) mesh triangles between brows and lids kept from folding
    checked_area: np.ndarray   # (K2,) their signed doubled areas in the photo
    lip_rgb: np.ndarray        # (3,) mean colour of the lips
    skin_lum: float
    mouth_width: float
    teeth: bool                # paint teeth (the photo's mouth is closed)
    close_scale: float         # closing motion scale: lips meet exactly at the resting jaw
    found_bs: np.ndarray       # (52,) the photo's blendshapes


def _loop_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@TRANSLATORS.register("mesh_warp")
class MeshWarpRenderer(ImageTranslator):
    """Renders AU / blendshape conditions on a photo's face mesh at full resolution.

    Args:
        space: ``"au17"`` (AU proxy intensities 0-5) or ``"landmarks68"`` (target points
            ``x_0..x_67, y_0..y_67`` normalised to the crop; the motion is projected onto
            the blendshape basis, so head motion in the targets is left out).
        image_size: the side :meth:`forward` works at when called as a network (the
            user-facing :meth:`~speechface.render.translators.Translator.translate` renders at the
            input's own size).
        ring: the static outer ring, as a factor of the face outline around its centre; the
            motion fades to zero between outline and ring.
        mouth_interior: paint the opened mouth (cavity, teeth, tongue).
        keep_expression: the blendshapes add to the photo's own expression: AU 0 (any score
            up to the resting level ``rest`` MediaPipe reads on relaxed faces) leaves them as
            the photo has them, and a smiling photo keeps its smile. Only the lip-parting
            articulators (``jawOpen``, ``mouthClose``, ``mouthLowerDown``) follow the
            condition itself, so an open mouth in the photo closes when the speech is silent.
            False: every blendshape follows the condition (AU 0 = the neutral face, a smile
            is taken away).
        max_stretch: per frame, the motion is scaled down so that no point of the face
            outline moves more than this share of its distance to the static ring (no
            fold-over at the chin for extreme conditions).
        max_grid: the warp field is computed on a grid of at most this many points per side
            of the face region, then interpolated (piecewise-affine fields are continuous).

    Buffers (saved with the model): ``template (468, 3)`` canonical mesh, ``basis (51, 468,
    3)`` displacement per blendshape score, ``rest (51,)`` resting scores, ``triangles (852, 3)``, ``oval (36,)``,
    ``inner_lips (20,)``.
    """

    paper = ("mesh renderer: MediaPipe face mesh, blendshape displacement basis fitted on "
             "talking-face clips, piecewise-affine warp at full resolution, painted mouth")
    full_resolution = True

    def __init__(self, space: str = "au17", image_size: int = 256, ring: float = 1.3,
                 mouth_interior: bool = True, keep_expression: bool = True,
                 max_stretch: float = 0.6, max_grid: int = 192) -> None:
        if space not in ("au17", "landmarks68"):
            raise ValueError(f"mesh_warp is conditioned on au17 or landmarks68, not {space!r}")
        super().__init__(space=space, image_size=image_size)
        if not ring > 1.0:
            raise ValueError(f"ring must be > 1, got {ring!r}")
        if max_grid < 16:
            raise ValueError(f"max_grid must be >= 16, got {max_grid!r}")
        self.ring = float(ring)
        self.mouth_interior = bool(mouth_interior)
        self.keep_expression = bool(keep_expression)
        if not 0 < max_stretch < 1:
            raise ValueError(f"max_stretch must be in (0, 1), got {max_stretch!r}")
        self.max_stretch = float(max_stretch)
        from ...teachers.mediapipe import BLENDSHAPE_NAMES

        articulator = [n in ("jawOpen", "mouthClose", "mouthLowerDownLeft",
                             "mouthLowerDownRight") for n in BLENDSHAPE_NAMES[1:]]
        self._articulator = np.array(articulator, bool)
        self._brow = np.array([n.startswith("brow") for n in BLENDSHAPE_NAMES[1:]], bool)
        self.max_grid = int(max_grid)
        self.register_buffer("template", torch.zeros(_V, 3))
        self.register_buffer("basis", torch.zeros(_N_BS, _V, 3))
        self.register_buffer("rest", torch.zeros(_N_BS))
        self.register_buffer("triangles", torch.zeros(852, 3, dtype=torch.int64))
        self.register_buffer("oval", torch.zeros(36, dtype=torch.int64))
        self.register_buffer("inner_lips", torch.zeros(20, dtype=torch.int64))
        self._rigs: OrderedDict[bytes, _Rig] = OrderedDict()

    # ------------------------------------------------------------------ the photo's rig
    def rig(self, face: np.ndarray) -> _Rig:
        """Find the face mesh of one uint8 crop and precompute its warp rig (cached)."""
        from ...teachers.mediapipe import MediaPipeTeacher, blendshapes_to_au17
        from ..mesh import ANCHORS, au17_to_blendshapes, similarity

        key = hashlib.blake2b(face.tobytes(), digest_size=16,
                              person=str(face.shape).encode()[:16]).digest()
        if key in self._rigs:
            self._rigs.move_to_end(key)
            return self._rigs[key]
        h, w = face.shape[:2]
        with MediaPipeTeacher(running_mode="image") as teacher:
            obs = teacher.observe(np.ascontiguousarray(face))
        if not obs.found:
            raise NoFaceError("the mesh renderer finds no face in the crop (MediaPipe)")
        mesh = obs.landmarks.astype(np.float64) * np.array([w, h, w])
        mesh = mesh[:_V]
        template = self.template.detach().cpu().double().numpy()
        a = list(ANCHORS)
        s, r, _ = similarity(template[a], mesh[a])
        basis = self.basis.detach().cpu().double().numpy()            # (51, V, 3)
        photo_basis = (s * basis @ r.T)[..., :2].reshape(_N_BS, -1)   # pixels per score
        ref = au17_to_blendshapes(blendshapes_to_au17(obs.blendshapes))[1:]
        xy = mesh[:, :2]
        photo_basis = self._blink_fields(photo_basis, xy)
        oval = self.oval.cpu().numpy()
        centre = xy[oval].mean(0)
        ring = centre + self.ring * (xy[oval] - centre)
        ring = np.clip(ring, [0, 0], [w - 1, h - 1])
        lips = self.inner_lips.cpu().numpy()
        eyes = [np.array(RIGHT_EYE), np.array(LEFT_EYE)]
        up_ids = np.array([a for a, _ in MOUTH_PAIRS])
        lo_ids = np.array([b for _, b in MOUTH_PAIRS])
        mid = 0.5 * (xy[up_ids] + xy[lo_ids])
        n_o, n_p = len(oval), len(MOUTH_PAIRS)
        ring_ids = _V + np.arange(n_o)
        eye_c = _V + n_o + np.arange(2)
        um_ids = _V + n_o + 2 + np.arange(n_p)          # middle line, moving with the upper lip
        lm_ids = um_ids + n_p                            # ... and with the lower lip
        src = np.concatenate([xy, ring, np.stack([xy[e].mean(0) for e in eyes]), mid, mid])
        band = []
        for i in range(n_o):
            j = (i + 1) % n_o
            band += [(oval[i], oval[j], ring_ids[i]), (ring_ids[i], oval[j], ring_ids[j])]
        extra = []
        for k, e in enumerate(eyes):
            extra += [(e[i], e[(i + 1) % len(e)], eye_c[k]) for i in range(len(e))]
        c0, c1 = _CORNERS
        for lip_ids, mids in ((up_ids, um_ids), (lo_ids, lm_ids)):
            chain = [c0, *lip_ids, c1]
            mchain = [c0, *mids, c1]
            for i in range(len(chain) - 1):
                for t in ((chain[i], chain[i + 1], mchain[i + 1]),
                          (chain[i], mchain[i + 1], mchain[i])):
                    if len(set(t)) == 3:
                        extra.append(t)
        # drawn in this order (later ones win where triangles fold over): the band, the eye
        # fans and mouth strips, then the mesh (lips stay over the teeth when a mouth closes)
        triangles = np.concatenate([np.array(band), np.array(extra),
                                    self.triangles.cpu().numpy()]).astype(np.int64)
        # the triangles between the brows and the lids (above the nose bridge, vertex 6)
        upper = template[:, 1] < template[6, 1]
        checked = self.triangles.cpu().numpy()
        checked = checked[upper[checked].all(1)]
        pc = src[checked]
        checked_area = (pc[:, 1, 0] - pc[:, 0, 0]) * (pc[:, 2, 1] - pc[:, 0, 1]) - \
            (pc[:, 1, 1] - pc[:, 0, 1]) * (pc[:, 2, 0] - pc[:, 0, 0])
        keep = np.abs(checked_area) > 0.1 * np.median(np.abs(checked_area))   # no slivers
        checked, checked_area = checked[keep], checked_area[keep]
        mw = float(np.linalg.norm(xy[c0] - xy[c1]))
        src_gap = float(np.median(np.linalg.norm(xy[up_ids] - xy[lo_ids], axis=1)))
        x0, y0 = np.floor(ring.min(0)).astype(int)
        x1, y1 = np.ceil(ring.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        step = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / self.max_grid)))
        # grid points at the centres of step x step blocks (exact for cv2.resize upsampling)
        off = (step - 1) / 2
        gx = x0 + off + step * np.arange(-(-(x1 - x0) // step), dtype=np.float64)
        gy = y0 + off + step * np.arange(-(-(y1 - y0) // step), dtype=np.float64)
        grid = np.stack(list(np.meshgrid(gx, gy)) + [np.ones((len(gy), len(gx)))], -1)
        import cv2

        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(inside, [np.round((ring - [x0, y0]) * 16).astype(np.int32)], 1,
                     cv2.LINE_8, 4)
        # lip colour: pixels of the outer-lip ring between outer and inner loop

        outer = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405,
                          314, 17, 84, 181, 91, 146])
        m_out = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m_out, [np.round(xy[outer]).astype(np.int32)], 1)
        cv2.fillPoly(m_out, [np.round(xy[lips]).astype(np.int32)], 0)
        lip_px = face[m_out.astype(bool)].astype(np.float64)
        if len(lip_px) >= 4:   # the darker 60 % of the band (no teeth of a smiling photo)
            lum = lip_px.mean(1)
            lip_rgb = lip_px[lum <= np.percentile(lum, 60)].mean(0)
        else:
            lip_rgb = np.array([150.0, 80.0, 80.0])
        m_face = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m_face, [np.round(xy[oval]).astype(np.int32)], 1)
        skin = face[m_face.astype(bool)]
        skin_lum = float(skin.mean()) if len(skin) else 128.0
        # a photo with an open mouth: the fitted closing motion would shut it long before the
        # condition reaches a resting jaw (then every closed-ish frame looks the same); scale
        # the closing so the lips meet exactly at the resting scores
        art_full = np.where(self._articulator, self.rest.detach().cpu().double().numpy() - ref,
                            0.0)
        full = (art_full @ photo_basis).reshape(_V, 2)
        up_m, lo_m = [82, 13, 312], [87, 14, 317]
        gap0 = float(np.mean(xy[lo_m, 1] - xy[up_m, 1]))
        shut = float(np.mean(full[lo_m, 1] - full[up_m, 1]))
        close_scale = float(np.clip(gap0 / -shut, 0.05, 1.0)) if shut < 0 and gap0 + shut < 0 \
            else 1.0
        rig = _Rig(shape=(h, w), src=src, basis=photo_basis, ref_bs=ref.astype(np.float64),
                   triangles=triangles, region=(x0, y0, x1, y1), step=step, grid=grid,
                   inside=inside.astype(bool), checked=checked, checked_area=checked_area,
                   lip_rgb=np.asarray(lip_rgb, np.float64), skin_lum=skin_lum,
                   mouth_width=mw, teeth=src_gap < 0.04 * mw, found_bs=obs.blendshapes,
                   close_scale=close_scale)
        self._rigs[key] = rig
        while len(self._rigs) > 4:
            self._rigs.popitem(last=False)
        return rig

    def _blink_fields(self, photo_basis: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """eyeBlink rows made from the photo's own lids: at a score of 1 above the resting
        level the upper lid margin meets the lower one (85 % / 15 % of the gap), the lid
        skin above follows by 50 % and 15 %. The fitted rows close the eye only partly
        (MediaPipe's mesh lags behind the lids in blinks), so these replace them."""
        from ...teachers.mediapipe import BLENDSHAPE_NAMES

        out = photo_basis.copy().reshape(_N_BS, _V, 2)
        # brows move the brow and the skin above the lids, not the lid margins (a strong
        # brow lowering would otherwise push the lids into the eyes)
        brow = [k for k, n in enumerate(BLENDSHAPE_NAMES[1:]) if n.startswith("brow")]
        for upper, lower, ring1, ring2 in _LIDS.values():
            for ids, keep in ((upper + lower, 0.0), (ring1, 0.3), (ring2, 0.7)):
                out[np.ix_(brow, list(ids))] *= keep
        out[:, list(_CANTHI)] = 0.0   # the eye corners stay where they are
        out = out.reshape(_N_BS, -1)
        rest = self.rest.detach().cpu().double().numpy()
        for side, (upper, lower, ring1, ring2) in _LIDS.items():
            k = BLENDSHAPE_NAMES.index(f"eyeBlink{side}") - 1
            field = np.zeros((_V, 2))
            gap = xy[list(lower)] - xy[list(upper)]
            field[list(upper)] = 0.85 * gap
            field[list(lower)] = -0.15 * gap
            field[list(ring1)] = 0.5 * gap
            field[list(ring2)] = 0.15 * gap
            out[k] = field.reshape(-1) / max(1.0 - float(rest[k]), 0.2)
        return out

    # ------------------------------------------------------------------ conditions
    def blendshape_delta(self, cond: np.ndarray, rig: _Rig) -> np.ndarray:
        """Conditions -> ``(N, 51)`` blendshape score changes to apply to the photo.

        ``au17`` ``(N, 17)``: the scores minus the photo's own; with ``keep_expression``, for
        the expressive blendshapes, the scores above the resting level. ``landmarks68``
        ``(N, 136)`` (x_0..x_67, y_0..y_67 normalised to the crop): the score changes whose
        motion of the 68 points best matches the targets' offsets from the photo's own points
        (ridge least squares on the photo's basis, after the head pose of the targets is
        aligned onto the photo's by a similarity on the nose bridge and eye corners), kept
        within the 0-1 range of each score.
        """
        if self.space.points:
            return self._landmark_delta(np.asarray(cond, np.float64), rig)
        from ..mesh import au17_to_blendshapes

        bs = au17_to_blendshapes(np.asarray(cond, np.float32))[:, 1:].astype(np.float64)
        delta = bs - rig.ref_bs
        if self.keep_expression:
            add = np.maximum(bs - self.rest.detach().cpu().double().numpy(), 0.0)
            delta = np.where(self._articulator, delta, add)
        return delta

    def _landmark_delta(self, cond: np.ndarray, rig: _Rig) -> np.ndarray:
        from ...teachers.mediapipe import BLENDSHAPE_NAMES, MP_TO_IBUG68

        h, w = rig.shape
        idx = list(MP_TO_IBUG68)
        basis = rig.basis.reshape(_N_BS, _V, 2)[:, idx]          # (51, 68, 2) pixels
        b = np.concatenate([basis[..., 0], basis[..., 1]], 1)    # (51, 136) as cond's layout
        use = np.array([not n.startswith("eyeLook") for n in BLENDSHAPE_NAMES[1:]])
        b = b * use[:, None]
        from ..mesh import apply_similarity, similarity

        own_xy = rig.src[idx]
        own = np.concatenate([own_xy[:, 0], own_xy[:, 1]])
        tgt = np.stack([cond[:, :68] * w, cond[:, 68:] * h], -1)        # (N, 68, 2) pixels
        rigid = [27, 28, 29, 30, 36, 39, 42, 45]   # nose bridge and eye corners: head pose
        for i in range(len(tgt)):
            s_, r_, t_ = similarity(tgt[i, rigid], own_xy[rigid])
            tgt[i] = apply_similarity(tgt[i], s_, r_, t_)
        offsets = np.concatenate([tgt[..., 0], tgt[..., 1]], 1) - own    # (N, 136) pixels
        gram = b @ b.T
        lam = 1e-2 * np.trace(gram) / max(int(use.sum()), 1)
        delta = np.linalg.solve(gram + lam * np.eye(_N_BS), b @ offsets.T).T
        own_bs = rig.found_bs[1:].astype(np.float64)
        return np.clip(delta, -own_bs, 1.0 - own_bs) * use

    def photo_condition(self, face: np.ndarray) -> np.ndarray:
        """The condition that gives ``face`` back unchanged: for ``au17`` its own mouth (AU
        proxy of its blendshapes) and, with ``keep_expression``, 0 elsewhere; for
        ``landmarks68`` its own 68 points normalised to the crop.

        Example:
            >>> c = net.photo_condition(face_crop)                   # doctest: +SKIP
            >>> bool((net.render(face_crop, c[None])[0] == face_crop).all())   # doctest: +SKIP
            True
        """
        from ...teachers.mediapipe import blendshapes_to_au17
        from ..mesh import au17_to_blendshapes

        rig = self.rig(np.ascontiguousarray(face))
        if self.space.points:
            from ...teachers.mediapipe import MP_TO_IBUG68

            h, w = rig.shape
            pts = rig.src[list(MP_TO_IBUG68)]
            return np.concatenate([pts[:, 0] / w, pts[:, 1] / h]).astype(np.float32)
        own = blendshapes_to_au17(rig.found_bs)
        if not self.keep_expression:
            return own
        moves = np.abs(au17_to_blendshapes(np.eye(17, dtype=np.float32) * 5)[:, 1:]) > 0
        mouth = (moves & self._articulator).any(1) & ~(moves & ~self._articulator).any(1)
        return np.where(mouth, own, 0.0).astype(np.float32)

    @staticmethod
    def _flips(rig: _Rig, move: np.ndarray) -> np.ndarray:
        """Which checked triangles moving the mesh by ``move (V, 2)`` turns over (bool)."""
        p = rig.src[rig.checked]
        q = p.copy()
        inner = rig.checked < _V
        q[inner] += move[rig.checked[inner]]
        b = (q[:, 1, 0] - q[:, 0, 0]) * (q[:, 2, 1] - q[:, 0, 1]) - \
            (q[:, 1, 1] - q[:, 0, 1]) * (q[:, 2, 0] - q[:, 0, 0])
        # turned over by more than a sliver (a fold shows; a compressed sliver does not)
        return (rig.checked_area * b < 0) & (np.abs(b) > 0.15 * np.abs(rig.checked_area))

    def target_vertices(self, delta_bs: np.ndarray, rig: _Rig) -> np.ndarray:
        """``(51,)`` score change -> ``(V + extra, 2)`` target vertices in pixels."""
        tgt = rig.src.copy()
        art = np.where(self._articulator, delta_bs, 0.0)
        move_art = (art @ rig.basis).reshape(_V, 2)
        move = ((delta_bs - art) @ rig.basis).reshape(_V, 2)
        # closing an open mouth: the jaw/lip motion stops where the lips meet (the middle
        # of the inner lips), so lips never cross and fold over
        up_m, lo_m = [82, 13, 312], [87, 14, 317]
        gap = (rig.src[lo_m, 1] + move[lo_m, 1]) - (rig.src[up_m, 1] + move[up_m, 1])
        closing = move_art[lo_m, 1] - move_art[up_m, 1]
        if closing.mean() < 0:     # closing: the photo's own opening maps onto the closure
            move_art = move_art * rig.close_scale
            closing = closing * rig.close_scale
        f = 1.0
        if closing.mean() < 0 and gap.mean() + closing.mean() < 0:
            f = float(np.clip(gap.mean() / -closing.mean(), 0.0, 1.0))
        move_art = f * move_art
        # no fold-over: the expressive motion is scaled down until no triangle of the mesh or
        # the outline band turns over (a strong brow lowering on a small brow-to-lid gap)
        brow = np.where(self._brow, delta_bs, 0.0)
        move_brow = (brow @ rig.basis).reshape(_V, 2)
        move = move - move_brow + move_art
        # a brow lowered onto a small brow-to-lid gap would fold the lid skin over: the brow
        # motion is scaled down until no triangle between brows and lids turns over
        if self._flips(rig, move + move_brow).any():
            lo, hi = 0.0, 1.0
            for _ in range(5):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if self._flips(rig, move + mid * move_brow).any() else (mid, hi)
            move_brow = lo * move_brow
        move = move + move_brow
        oval = self.oval.cpu().numpy()
        reach = np.linalg.norm(rig.src[_V:_V + len(oval)] - rig.src[oval], axis=1)
        stretch = float((np.linalg.norm(move[oval], axis=1) / np.maximum(reach, 1e-6)).max())
        if stretch > self.max_stretch:
            move *= self.max_stretch / stretch
        tgt[:_V] += move
        n_o, n_p = len(self.oval), len(MOUTH_PAIRS)
        up_ids = [a for a, _ in MOUTH_PAIRS]
        lo_ids = [b for _, b in MOUTH_PAIRS]
        # a closing mouth: the lips meet, they do not cross (no fold-over of the lip triangles)
        cross = tgt[lo_ids, 1] - tgt[up_ids, 1] < np.minimum(
            rig.src[lo_ids, 1] - rig.src[up_ids, 1], 0.0) - 1e-6
        if cross.any():
            mid = 0.5 * (tgt[up_ids, 1] + tgt[lo_ids, 1])
            tgt[np.array(up_ids)[cross], 1] = mid[cross]
            tgt[np.array(lo_ids)[cross], 1] = mid[cross]
        for k, e in enumerate((RIGHT_EYE, LEFT_EYE)):
            tgt[_V + n_o + k] = tgt[list(e)].mean(0)
        um = _V + n_o + 2
        tgt[um:um + n_p] = tgt[up_ids] + (rig.src[um:um + n_p] - rig.src[up_ids])
        tgt[um + n_p:um + 2 * n_p] = tgt[lo_ids] + (rig.src[um + n_p:um + 2 * n_p] -
                                                     rig.src[lo_ids])
        return tgt

    # ------------------------------------------------------------------ one frame
    def warp_frame(self, face: np.ndarray, rig: _Rig, tgt: np.ndarray) -> np.ndarray:
        """The crop warped so that ``rig.src`` lands on ``tgt`` (piecewise affine)."""
        import cv2

        x0, y0, x1, y1 = rig.region
        tri = rig.triangles
        q = tgt[tri]                                   # (K, 3, 2) target triangles
        p = rig.src[tri]                               # (K, 3, 2) source triangles
        qh = np.concatenate([q, np.ones(q.shape[:2] + (1,))], -1)   # (K, 3, 3)
        det = np.linalg.det(qh)
        bad = np.abs(det) < 1e-9
        qh[bad] = np.eye(3)
        aff = np.linalg.solve(qh, p)                  # (K, 3, 2): [x y 1] @ aff = source
        gh, gw = rig.grid.shape[:2]
        ids = np.full((gh, gw), -1, np.int32)
        off = (rig.step - 1) / 2
        pts = np.round((q - [x0 + off, y0 + off]) / rig.step * 16).astype(np.int32)
        fill = cv2.fillConvexPoly
        # triangles the motion turned over (lid skin under a lowered brow, say) are drawn
        # first, so the skin folding over them covers them
        sp = rig.src[tri]
        a_src = (sp[:, 1, 0] - sp[:, 0, 0]) * (sp[:, 2, 1] - sp[:, 0, 1]) - \
            (sp[:, 1, 1] - sp[:, 0, 1]) * (sp[:, 2, 0] - sp[:, 0, 0])
        a_tgt = (q[:, 1, 0] - q[:, 0, 0]) * (q[:, 2, 1] - q[:, 0, 1]) - \
            (q[:, 1, 1] - q[:, 0, 1]) * (q[:, 2, 0] - q[:, 0, 0])
        flipped = (a_src * a_tgt < 0) & ~bad
        for k in np.concatenate([np.flatnonzero(flipped), np.flatnonzero(~flipped & ~bad)]):
            fill(ids, pts[k], int(k), cv2.LINE_8, 4)
        ok = ids >= 0
        disp = np.zeros((gh, gw, 2), np.float32)
        g = rig.grid[ok]
        disp[ok] = (np.einsum("pi,pij->pj", g, aff[ids[ok]]) - g[:, :2]).astype(np.float32)
        rh, rw = y1 - y0, x1 - x0
        if rig.step > 1:
            disp = cv2.resize(disp, (gw * rig.step, gh * rig.step),
                              interpolation=cv2.INTER_LINEAR)[:rh, :rw]
        xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32),
                             np.arange(y0, y1, dtype=np.float32))
        # sub-pixel motion below 0.2 px is left out (exact, sharp pixels), as is all outside the ring
        moved = (np.abs(disp).max(-1) > 0.2) & rig.inside
        mx = np.where(moved, xs + disp[..., 0], xs)
        my = np.where(moved, ys + disp[..., 1], ys)
        out = face.copy()
        out[y0:y1, x0:x1] = cv2.remap(face, mx, my, cv2.INTER_LANCZOS4,
                                      borderMode=cv2.BORDER_REPLICATE)
        if self.mouth_interior:
            self._paint_mouth(out, rig, tgt)
        return out

    def _paint_mouth(self, out: np.ndarray, rig: _Rig, tgt: np.ndarray) -> None:
        """Paint cavity, teeth and tongue inside the target inner-lip polygon (in place)."""
        import cv2

        n_o, n_p = len(self.oval), len(MOUTH_PAIRS)
        um = _V + n_o + 2
        c0, c1 = _CORNERS
        # the gap between the strips: corner, upper middle line, corner, lower middle line back
        order = [c0, *range(um, um + n_p), c1, *range(um + 2 * n_p - 1, um + n_p - 1, -1)]
        poly = tgt[order]
        mw = max(rig.mouth_width, 1.0)
        gap_px = float(np.median(tgt[um + n_p:um + 2 * n_p, 1] - tgt[um:um + n_p, 1]))
        alpha_open = float(np.clip((gap_px - 1.0) / (1.0 + 0.03 * mw), 0.0, 1.0))
        if alpha_open <= 0:
            return
        h, w = out.shape[:2]
        bx0, by0 = np.floor(poly.min(0)).astype(int) - 2
        bx1, by1 = np.ceil(poly.max(0)).astype(int) + 3
        bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, w), min(by1, h)
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            return
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [bx0, by0]) * 16).astype(np.int32)], 255,
                     cv2.LINE_AA, 4)
        m = mask.astype(np.float32) / 255.0
        # upper / lower inner-lip lines as functions of x
        upper = poly[:n_p + 2]                                   # corner ... corner, upper
        lower = np.concatenate([poly[n_p + 1:], poly[:1]])[::-1]  # corner ... corner, lower
        xs = np.arange(bx0, bx1, dtype=np.float64)
        ou, ol = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
        y_up = np.interp(xs, upper[ou, 0], upper[ou, 1])[None]
        y_lo = np.interp(xs, lower[ol, 0], lower[ol, 1])[None]
        gap = np.maximum(y_lo - y_up, 0.0)
        ys = np.arange(by0, by1, dtype=np.float64)[:, None]
        cx = 0.5 * (poly[0, 0] + poly[n_p + 1, 0])
        u = np.abs(xs - cx)[None] / (0.5 * mw)               # 0 at the centre, 1 at a corner
        t = np.clip((ys - y_up) / np.maximum(gap, 1e-3), 0, 1)   # 0 upper lip, 1 lower lip
        light = float(np.clip(rig.skin_lum / 150.0, 0.35, 1.1))
        hue = rig.lip_rgb / max(float(rig.lip_rgb.max()), 1.0)
        # cavity: dark, in the lips' hue, darkest at the back (middle of the opening)
        depth = 1 - 0.5 * np.sin(np.pi * t) * np.clip(1 - u, 0, 1)
        img = (hue * 52.0 * light)[None, None] * depth[..., None]
        # tongue: a soft mound rising from the lower lip, seen when the mouth is well open
        open_frac = np.clip(gap / (0.25 * mw), 0, 1)
        tongue = np.clip((t - 0.55) / 0.3, 0, 1) * np.clip(1 - (u / 0.7) ** 2, 0, 1)
        tongue_rgb = rig.lip_rgb * 0.62
        img += (tongue_rgb - img) * (tongue * open_frac)[..., None]
        # upper teeth: a band under the upper lip, fading towards the corners
        teeth_rgb = np.array([232.0, 226.0, 212.0]) * light
        h_up = np.minimum(0.42 * gap, 0.085 * mw)
        d_up = ys - y_up
        up = np.clip((h_up - d_up) / 0.8 + 0.5, 0, 1) * np.clip((0.72 - u) / 0.18, 0, 1)
        shade = (0.78 + 0.22 * np.cos(0.5 * np.pi * np.clip(u / 0.72, 0, 1))) * \
            (1 - 0.18 * np.clip(d_up / np.maximum(h_up, 1e-3), 0, 1))
        if rig.teeth:
            img += (teeth_rgb * shade[..., None] - img) * up[..., None]
        # lower teeth: thinner and in shadow, seen when the mouth is well open
        h_lo = np.minimum(0.16 * gap, 0.045 * mw)
        d_lo = y_lo - ys
        lo = np.clip((h_lo - d_lo) / 0.8 + 0.5, 0, 1) * np.clip((0.5 - u) / 0.15, 0, 1)
        if rig.teeth:
            img += (teeth_rgb * 0.62 - img) * (lo * open_frac)[..., None]
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), max(0.5, 0.004 * mw))
        a = (m * alpha_open)[..., None]
        patch = out[by0:by1, bx0:bx1].astype(np.float32)
        out[by0:by1, bx0:bx1] = np.clip(np.rint(patch + a * (img - patch)), 0, 255).astype(np.uint8)

    # ------------------------------------------------------------------ batches
    def render(self, face: np.ndarray, cond: Any) -> np.ndarray:
        """One uint8 crop ``(H, W, 3)`` and ``(N, D)`` conditions (17 AUs, or 136 landmark
        coordinates normalised to the crop) -> ``(N, H, W, 3)`` uint8 frames.

        Example:
            >>> frames = net.render(face_crop, np.zeros((3, 17)))   # doctest: +SKIP
        """
        face = np.ascontiguousarray(face)
        if face.ndim != 3 or face.shape[-1] != 3 or face.dtype != np.uint8:
            raise ImageError(f"render needs an (H, W, 3) uint8 face, got {face.shape} {face.dtype}")
        c = np.asarray(cond, np.float32)
        if c.ndim == 1:
            c = c[None]
        rig = self.rig(face)
        deltas = self.blendshape_delta(c, rig)
        out = np.empty((len(c),) + face.shape, np.uint8)
        for i, d in enumerate(deltas):
            out[i] = self.warp_frame(face, rig, self.target_vertices(d, rig))
        return out

    def forward(self, img: torch.Tensor, cond: torch.Tensor  # type: ignore[override]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Network-style call: ``img (B, 3, H, W)`` in [-1, 1], ``cond (B, 17)`` ->
        ``(out, attention)``; attention is 1 where a pixel kept its value."""
        self.check_inputs(img, cond)
        faces = ((img.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
        faces_np = faces.permute(0, 2, 3, 1).cpu().numpy()
        c = cond.detach().float().cpu().numpy()
        outs = np.stack([self.render(f, c[i:i + 1])[0] for i, f in enumerate(faces_np)])
        out = torch.from_numpy(outs).permute(0, 3, 1, 2).to(img.device, img.dtype) / 127.5 - 1
        att = (torch.from_numpy(outs) == faces.permute(0, 2, 3, 1).cpu()).all(-1)
        return out, att[:, None].to(img.device, img.dtype)


def build_renderer(model: dict[str, Any], *, name: str | None = None,
                   info: dict[str, Any] | None = None, **model_args: Any) -> Any:
    """A :class:`~speechface.render.translators.Translator` around a fitted basis
    (:func:`speechface.render.fit.fit_basis`'s dict: ``template``, ``basis``).

    Example:
        >>> tr = build_renderer(fit_basis(tracks))       # doctest: +SKIP
        >>> tr.save_pretrained("my_renderer")              # doctest: +SKIP
    """
    from ..mesh import mesh_topology
    from .base import Translator

    net = MeshWarpRenderer(**model_args)
    topo = mesh_topology()
    with torch.no_grad():
        net.template.copy_(torch.as_tensor(np.asarray(model["template"], np.float32)))
        net.basis.copy_(torch.as_tensor(np.asarray(model["basis"], np.float32)))
        net.rest.copy_(torch.as_tensor(np.asarray(model.get("rest", np.zeros(_N_BS)),
                                                  np.float32)))
        net.triangles.copy_(torch.as_tensor(topo["triangles"]))
        net.oval.copy_(torch.as_tensor(topo["oval"]))
        net.inner_lips.copy_(torch.as_tensor(topo["inner_lips"]))
    meta = {"crop_margin": 0.35, "crop_shift": 0.0}
    meta.update(info or {})
    name = name or f"mesh_warp.{net.space.name}-mediapipe"
    return Translator(net, name=name, pretrained=True, info=meta)
