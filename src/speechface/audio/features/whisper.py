"""Whisper encoder features at the video frame rate: a frozen pretrained speech encoder.

:class:`WhisperFeatures` (registered as ``"whisper"``) turns 16 kHz speech into the hidden states
of OpenAI Whisper's audio encoder, resampled onto the library's 25 fps grid, so every network,
space, metric and trainer works on them unchanged: ``(..., time) -> (..., 384, time // 640)``
with the packaged tiny.en encoder.

Pipeline (all plain torch, numerically Whisper's own):

1. **Whisper log-mel**: ``torch.stft`` with ``n_fft=400``, hop 160 (10 ms), a periodic Hann window
   of 400, centred with reflect padding; the power of all frames but the last; an 80-band
   Slaney-style mel filterbank over 0-8 kHz (librosa's ``filters.mel(sr=16000, n_fft=400,
   n_mels=80)``: Slaney mel scale, area normalisation); ``log10`` with a floor of 1e-10, clipped at
   ``max - 8`` (the maximum of the encoder window), then ``(x + 4) / 4``.
2. **Encoder**: ``conv1`` (k 3, pad 1) + GELU, ``conv2`` (k 3, stride 2, pad 1) + GELU (50 frames
   per second, frame ``i`` centred at ``i / 50`` s), plus the sinusoidal/learned positions, then
   pre-norm transformer blocks (self-attention and a GELU MLP) and a final layer norm.
3. **25 fps**: output frame ``n`` (at ``n / 25`` s) is the triangular average
   ``0.25 h[2n-1] + 0.5 h[2n] + 0.25 h[2n+1]`` of the encoder frames around it (``h[-1]`` is
   ``h[0]``), so it stays centred on its video frame.

**Short audio is not padded to 30 s** by default: the encoder runs on the frames the audio has,
with the first rows of the position table (as the reference implementation's check does).
``pad_seconds=30`` pads every encoder window with silence to 30 s, the only input Whisper saw in
training (the states of the audio's frames are kept; the encoder also attends to the silence).
It costs about 9x the encoder time of a 3 s clip (0.22 s against 0.025 s with 2 blocks on one
thread) and changes the states by a relative RMS of 0.29 (block 2, per-utterance normalised),
but it did not help: the ARKit recipe trained on padded features predicts the development
speakers' mouths as well as on unpadded ones (8 seeds each: jawOpen r 0.518 against 0.522, 16
mouth blendshapes 0.321 against 0.323; ``docs/avatars.md``), so no packaged model uses it. **Long audio**
(more than ``window_seconds``, 10 s by default, at most the encoder's 30 s / 1500 positions) goes
through in windows of ``window_seconds`` that overlap by ``overlap_seconds`` (2 s); each window's
outer ``overlap/2`` frames are dropped, so every kept frame has at least 1 s of context on both
sides except at the ends of the audio. 10 s windows keep inference close to training (the
training clips are 3-10 s; the encoder's states depend on a frame's position in its window) and
make attention cheaper than 30 s windows. The windows are independent (each has its own log-mel
maximum), and Whisper's states depend on where a frame sits in its window, so a frame's value
depends on where the windows fall. :func:`seam_error` measures it: on 60 s of real speech
(RAVDESS), two window placements shifted by half a window step give features that differ by a
relative RMS of 0.48 at frames within 1 s of a seam and 0.44 elsewhere (``layer=2,
normalize="utterance"``; 0.84 and 0.82 for the final layer unnormalised). The seams add little of
their own; the dependence on the window is what a model trained on 3-10 s clips learns to live
with, and why inference uses windows of that length.

**Weights.** ``model="tiny.en"`` (default) loads the float16 encoder that ships inside the package
(16 MB, MIT, ``openai/whisper-tiny.en``); any other Whisper size loads from the Hugging Face Hub by
repo id (``"openai/whisper-base"``, ...) through ``huggingface_hub`` (its ``model.safetensors`` and
``config.json``; only the ``model.encoder.*`` keys are kept), or from a local folder with those two
files. The encoder is frozen: its weights are not trained and not saved in a speech model's
``state_dict`` (the model's ``config.json`` names them).

**Streaming** is not supported: every encoder frame attends to the whole window, so a frame is
final only once its window is complete (:meth:`WhisperFeatures.stream_reason`). **Long input
in blocks** (``predict(..., chunk_seconds=)``, :mod:`speechface.speech.longform`) computes the same
windows one at a time (:meth:`WhisperFeatures.block_stream`, an
:class:`~speechface.audio.features.OverlapWindowStream`).

Example:
    >>> fx = WhisperFeatures()                                    # doctest: +SKIP
    >>> fx(torch.zeros(16000 * 3)).shape                          # doctest: +SKIP
    torch.Size([384, 75])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ModelError
from ...core.registry import FEATURES
from .base import FeatureExtractor, OverlapWindowStream, overlap_windows

__all__ = ["WhisperFeatures", "WhisperEncoder", "whisper_log_mel", "slaney_mel_fbanks",
           "load_whisper_encoder", "seam_error", "PACKAGED_WHISPER"]

#: Folder of the Whisper tiny.en encoder weights that ship with the package.
PACKAGED_WHISPER = Path(__file__).resolve().parent / "weights" / "whisper-tiny.en-encoder"

_N_FFT = 400
_HOP = 160
_SR = 16000
_MAX_WINDOW = 3000  # mel frames in 30 s


# --------------------------------------------------------------------------- log-mel
def _hz_to_mel_slaney(f: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return torch.where(f >= min_log_hz, min_log_mel + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep,
                       mels)


def _mel_to_hz_slaney(m: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_fbanks(n_fft: int = _N_FFT, n_mels: int = 80, sample_rate: int = _SR,
                      f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Slaney-style mel filterbank with area normalisation, as ``librosa.filters.mel`` (defaults).

    Returns ``(n_mels, n_fft // 2 + 1)`` float64 weights: ``mel = fb @ power``.

    Example:
        >>> slaney_mel_fbanks().shape
        torch.Size([80, 201])
    """
    f_max = float(sample_rate) / 2 if f_max is None else float(f_max)
    fft_freqs = torch.linspace(0, float(sample_rate) / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, hi = _hz_to_mel_slaney(torch.tensor([f_min, f_max], dtype=torch.float64))
    mel_f = _mel_to_hz_slaney(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64))
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def whisper_log_mel(wave: torch.Tensor, fb: torch.Tensor | None = None,
                    window: torch.Tensor | None = None) -> torch.Tensor:
    """Whisper's normalised log-mel: ``(batch, time)`` 16 kHz -> ``(batch, 80, time // 160)``.

    The clip at ``max - 8`` uses each row's own maximum (one encoder window).

    Example:
        >>> whisper_log_mel(torch.zeros(1, 16000)).shape
        torch.Size([1, 80, 100])
    """
    if fb is None:
        fb = slaney_mel_fbanks().float()
    if window is None:
        window = torch.hann_window(_N_FFT, periodic=True)
    n_frames = wave.shape[-1] // _HOP
    if n_frames == 0:
        return wave.new_zeros(wave.shape[0], fb.shape[0], 0)
    x = wave
    if x.shape[-1] <= _N_FFT // 2:  # reflect padding needs more samples than half the FFT
        x = F.pad(x, (0, _N_FFT // 2 + 1 - x.shape[-1]))
    spec = torch.stft(x, _N_FFT, _HOP, window=window, center=True, pad_mode="reflect",
                      return_complex=True)[..., :n_frames]
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(fb.to(power.dtype), power)
    logm = torch.log10(mel.clamp(min=1e-10))
    peak = logm.amax(dim=(-2, -1), keepdim=True)
    logm = torch.maximum(logm, peak - 8.0)
    return (logm + 4.0) / 4.0


# --------------------------------------------------------------------------- encoder
class _Block(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.self_attn_layer_norm(x)
        q, k, v = (p(h).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out_proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder in plain torch: ``(batch, n_mels, T)`` -> ``(batch, ceil(T/2), d)``.

    Hugging Face key names are mapped on load (:func:`load_whisper_encoder`).

    Args:
        d_model, encoder_layers, encoder_attention_heads, encoder_ffn_dim, num_mel_bins,
        max_source_positions: the Hugging Face ``WhisperConfig`` fields.

    Example:
        >>> enc = WhisperEncoder(d_model=8, encoder_layers=1, encoder_attention_heads=2,
        ...                      encoder_ffn_dim=16, num_mel_bins=4, max_source_positions=10)
        >>> enc(torch.zeros(1, 4, 20)).shape
        torch.Size([1, 10, 8])
    """

    def __init__(self, d_model: int = 384, encoder_layers: int = 4, encoder_attention_heads: int = 6,
                 encoder_ffn_dim: int = 1536, num_mel_bins: int = 80,
                 max_source_positions: int = 1500) -> None:
        super().__init__()
        if d_model % encoder_attention_heads:
            raise ModelError(f"Whisper config: d_model {d_model} is not a multiple of "
                             f"encoder_attention_heads {encoder_attention_heads}")
        self.d_model = d_model
        self.num_mel_bins = num_mel_bins
        self.max_source_positions = max_source_positions
        self.conv1 = nn.Conv1d(num_mel_bins, d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(max_source_positions, d_model)
        self.layers = nn.ModuleList(_Block(d_model, encoder_attention_heads, encoder_ffn_dim)
                                    for _ in range(encoder_layers))
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, mel: torch.Tensor, n_layers: int | None = None) -> torch.Tensor:
        """``n_layers``: run only the first blocks (hidden state after block ``n_layers``, no final
        norm); ``None``: all blocks and the final layer norm."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.max_source_positions:
            raise ValueError(f"{x.shape[1]} encoder frames exceed the {self.max_source_positions} "
                             "positions of the encoder window")
        x = x + self.embed_positions.weight[: x.shape[1]].to(x.dtype)
        layers = self.layers if n_layers is None else self.layers[:n_layers]
        for block in layers:
            x = block(x)
        return self.layer_norm(x) if n_layers is None else x


def _hf_to_local(key: str) -> str | None:
    if not key.startswith("model.encoder."):
        return None
    key = key[len("model.encoder."):]
    return key.replace("self_attn.", "")


def _read_encoder_folder(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ModelError(f"{folder}: a Whisper folder needs config.json and model.safetensors "
                             f"({p.name} missing)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{cfg_path}: unreadable Whisper config: {e}") from e
    try:
        tensors = load_file(str(w_path))
    except Exception as e:  # safetensors raises its own error types
        raise ModelError(f"{w_path}: unreadable safetensors file: {e}") from e
    return cfg, tensors


def _resolve_whisper(model: str) -> Path:
    if model in ("tiny.en", "openai/whisper-tiny.en") and (PACKAGED_WHISPER / "model.safetensors").is_file():
        return PACKAGED_WHISPER
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return path
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise ModelError(f"Whisper model {model!r}: not the packaged 'tiny.en', not a folder with "
                         "config.json + model.safetensors, not a Hub repo id (owner/name)")
    try:
        from huggingface_hub import hf_hub_download
        cfg = hf_hub_download(model, "config.json")
        hf_hub_download(model, "model.safetensors")
    except Exception as e:  # offline, missing repo, ...: one message
        raise ModelError(f"Whisper model {model!r} could not be loaded from the Hugging Face Hub "
                         f"or its local cache: {e}") from e
    return Path(cfg).parent


def load_whisper_encoder(model: str = "tiny.en") -> WhisperEncoder:
    """Build a frozen :class:`WhisperEncoder` (float32, eval mode) from the packaged tiny.en, a
    local folder or a Hub repo id.

    Example:
        >>> enc = load_whisper_encoder()                      # doctest: +SKIP
        >>> enc.d_model, len(enc.layers)                      # doctest: +SKIP
        (384, 4)
    """
    folder = _resolve_whisper(model)
    cfg, tensors = _read_encoder_folder(folder)
    fields = ("d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
              "num_mel_bins", "max_source_positions")
    try:
        args = {k: int(cfg[k]) for k in fields}
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{folder / 'config.json'}: not a Whisper config ({e})") from e
    if not (0 < args["d_model"] <= 4096 and 0 < args["encoder_layers"] <= 64
            and 0 < args["encoder_ffn_dim"] <= 16384 and 0 < args["max_source_positions"] <= 4096):
        raise ModelError(f"{folder / 'config.json'}: Whisper sizes out of range: {args}")
    enc = WhisperEncoder(**args)
    state = {}
    for k, v in tensors.items():
        local = _hf_to_local(k)
        if local is not None:
            state[local] = v.float()
    try:
        enc.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{folder}: the weights do not fit a Whisper encoder of {args}: {e}") from e
    enc.eval().requires_grad_(False)
    return enc


# --------------------------------------------------------------------------- the extractor
@FEATURES.register("whisper")
class WhisperFeatures(FeatureExtractor):
    """Frozen Whisper encoder states at 25 fps: ``(..., time) -> (..., d_model, time // 640)``.

    Args:
        sample_rate: must be 16000 (Whisper's rate; :func:`speechface.audio.load_audio`
            resamples).
        fps: 25 (each output frame is two 20 ms encoder frames).
        model: ``"tiny.en"`` (packaged), a Hub repo id or a local folder.
        layer: number of encoder blocks to run; ``None`` (default) runs all of them and the final
            layer norm.
        window_seconds: longest stretch given to the encoder at once (10; at most 30).
        overlap_seconds: overlap of consecutive windows for longer audio.
        normalize: ``"none"`` or ``"utterance"``: standardise every dimension over the frames of
            each encoder window (the utterance, for audio up to ``window_seconds``), which removes
            speaker- and channel-constant offsets (per-utterance normalisation).
        pad_seconds: ``None`` (default): the encoder sees only the audio's frames; a number
            (``window_seconds`` to 30): every window is padded with silence to that length before
            the log-mel, as Whisper pads to 30 s.
        compute_dtype: ``"float32"`` (default) or ``"bfloat16"``: run the encoder under bfloat16
            autocast, about 2x faster on CPUs with bf16 instructions, at a relative feature error
            of about 1% (measured on speech); a speed option for inference.

    Example:
        >>> fx = WhisperFeatures()                      # doctest: +SKIP
        >>> fx(torch.randn(2, 16000)).shape             # doctest: +SKIP
        torch.Size([2, 384, 25])
    """

    #: Training caches these features on disk (see :func:`speechface.data.clips.load_training_clips`).
    cache_features = True

    def stream_reason(self) -> str:
        """Why it cannot stream: every encoder frame attends to its whole window."""
        return ("Whisper encoder features attend to the whole encoder window (up to 30 s), "
                "so no frame is final before its window ends: use predict() on complete "
                "audio, or a logmel model for streaming")

    def block_stream(self) -> OverlapWindowStream:
        """Long input: the windows of :meth:`forward`, one at a time (bounded memory)."""
        win, overlap = self._window_frames()
        return OverlapWindowStream(self, self._encode, win, overlap)

    def __init__(self, sample_rate: int = 16000, fps: int = 25, model: str = "tiny.en",
                 layer: int | None = None, window_seconds: float = 10.0,
                 overlap_seconds: float = 2.0, normalize: str = "none",
                 compute_dtype: str = "float32", pad_seconds: float | None = None) -> None:
        super().__init__(sample_rate, fps)
        if self.sample_rate != _SR:
            raise ValueError(f"Whisper features need 16000 Hz input, got sample_rate={sample_rate}")
        if self.hop_length % (2 * _HOP):
            raise ValueError(f"fps {fps}: the hop ({self.hop_length} samples) must be a multiple "
                             f"of Whisper's 20 ms encoder frame (320 samples)")
        if not 1.0 <= float(window_seconds) <= 30.0:
            raise ValueError(f"window_seconds must be within [1, 30], got {window_seconds}")
        if not 0.0 <= float(overlap_seconds) <= float(window_seconds) / 2:
            raise ValueError(f"overlap_seconds must be within [0, window_seconds / 2], got "
                             f"{overlap_seconds}")
        self.model = str(model)
        self.layer = None if layer is None else int(layer)
        self.window_seconds = float(window_seconds)
        self.overlap_seconds = float(overlap_seconds)
        if normalize not in ("none", "utterance"):
            raise ValueError(f"normalize must be 'none' or 'utterance', got {normalize!r}")
        self.normalize = str(normalize)
        if compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")
        self.compute_dtype = str(compute_dtype)
        if pad_seconds is not None and not float(window_seconds) <= float(pad_seconds) <= 30.0:
            raise ValueError(f"pad_seconds must be within [window_seconds, 30], got {pad_seconds}")
        self.pad_seconds = None if pad_seconds is None else float(pad_seconds)
        self.__dict__["_encoder"] = load_whisper_encoder(self.model)
        if self.layer is not None and not 1 <= self.layer <= len(self.encoder.layers):
            raise ValueError(f"layer must be within 1..{len(self.encoder.layers)}, got {layer}")
        self.n_features = self.encoder.d_model
        self.register_buffer("fb", slaney_mel_fbanks(n_mels=self.encoder.num_mel_bins).float(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(_N_FFT, periodic=True), persistent=False)

    # The encoder is frozen and rebuilt from ``model``: it is held outside the module tree so it
    # is neither saved in nor expected by a speech model's state_dict, nor given to an optimizer;
    # ``_apply`` still moves and casts it with ``.to()`` / ``.half()``.
    @property
    def encoder(self) -> WhisperEncoder:
        return self.__dict__["_encoder"]

    def _apply(self, fn: Any, recurse: bool = True) -> WhisperFeatures:  # type: ignore[override]
        super()._apply(fn, recurse)
        self.__dict__["_encoder"]._apply(fn)
        return self

    def _window_frames(self) -> tuple[int, int]:
        """(window, overlap) in 25 fps output frames."""
        return (int(round(self.window_seconds * self.fps)),
                int(round(self.overlap_seconds * self.fps)))

    @torch.no_grad()
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) of at most one window -> (batch, d, samples // hop) at 25 fps."""
        n_out = x.shape[-1] // self.hop_length
        if n_out == 0:
            return x.new_zeros(x.shape[0], self.n_features, 0)
        if self.pad_seconds is not None:  # Whisper's own regime: silence after the audio
            x = F.pad(x, (0, max(0, int(round(self.pad_seconds * _SR)) - x.shape[-1])))
        mel = whisper_log_mel(x, self.fb, self.window)
        if self.compute_dtype == "bfloat16":
            with torch.autocast(device_type=mel.device.type, dtype=torch.bfloat16):
                h = self.encoder(mel, self.layer).float()  # (batch, T50, d)
        else:
            h = self.encoder(mel, self.layer)
        step = self.hop_length // (2 * _HOP)  # 20 ms encoder frames per output frame (2)
        centre = torch.arange(n_out, device=h.device) * step
        prev = (centre - 1).clamp(min=0)
        nxt = (centre + 1).clamp(max=h.shape[1] - 1)
        out = (0.5 * h[:, centre] + 0.25 * (h[:, prev] + h[:, nxt])).transpose(1, 2)
        if self.normalize == "utterance":
            mean = out.mean(-1, keepdim=True)
            std = out.std(-1, keepdim=True, unbiased=False) if n_out > 1 else torch.ones_like(mean)
            out = (out - mean) / (std + 1e-5)
        return out

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., time)`` float 16 kHz samples -> ``(..., d_model, time // 640)``."""
        x, lead = self._frames_input(wave)
        x = x.to(self.window.dtype)
        win, overlap = self._window_frames()
        out = overlap_windows(self._encode, x, self.hop_length, win, overlap)
        return out.reshape(*lead, *out.shape[-2:])


def seam_error(fx: WhisperFeatures, wave: torch.Tensor, seconds: float = 60.0) -> dict[str, float]:
    """Measure the window-seam error of long-input processing on ``wave`` (1-D, 16 kHz).

    Compares the features of the same audio computed with two window placements shifted by half a
    window step: at the frames within 1 s of a seam of the first placement, returns the relative
    RMS difference ``rms(a - b) / rms(b)`` and the same away from seams (both placements still
    differ there because their windows differ).

    Example:
        >>> seam_error(WhisperFeatures(layer=2, normalize="utterance"), speech)  # doctest: +SKIP
        {'seam_rel_rms': 0.48, 'elsewhere_rel_rms': 0.44, 'seams': 7}
    """
    wave = wave[: int(seconds * _SR)]
    win, overlap = fx._window_frames()
    step = win - overlap
    shift = step // 2
    a = fx(wave)
    b_tail = fx(wave[shift * fx.hop_length:])
    a = a[:, shift:shift + b_tail.shape[-1]]
    diff = (a - b_tail).pow(2).mean(0)
    ref = b_tail.pow(2).mean(0)
    n = a.shape[-1]
    seams = [s - shift + overlap // 2 for s in range(step, n + shift, step) if s + overlap // 2 < n + shift]
    near = torch.zeros(n, dtype=torch.bool)
    for s in seams:
        lo, hi = max(0, s - fx.fps), min(n, s + fx.fps)
        if lo < hi:
            near[lo:hi] = True
    def rel(mask: torch.Tensor) -> float:
        return float((diff[mask].mean() / ref[mask].mean()).sqrt()) if mask.any() else float("nan")
    return {"seam_rel_rms": rel(near), "elsewhere_rel_rms": rel(~near), "seams": len(seams)}
