"""Live mode: speech from a microphone or stdin -> one frame of values every 40 ms, printed as JSON
lines or sent over UDP / OSC, with the measured latency of every frame.

``speechface stream`` (:mod:`speechface.cli.stream`) wires three parts that can also be used alone:

- **sources** yield ``(samples, arrival_time)`` chunks: :func:`microphone_chunks`
  (``sounddevice``, 40 ms blocks), :func:`stdin_chunks` (raw PCM ``s16le`` / ``f32le`` or a WAV
  stream, detected by its ``RIFF`` header) and :func:`file_chunks` (a sound file, optionally paced
  in real time);
- :func:`run_live` pushes each chunk into the estimator's stream
  (:meth:`~speechface.speech.SpeechEstimator.stream`) and hands every frame that became final to
  a sink, as a :class:`LiveFrame`;
- **sinks**: :class:`JsonLinesSink` (stdout or any text file), :class:`UdpJsonSink` (one JSON
  datagram per frame) and :class:`OscSink` (OSC 1.0 over UDP: one ``/speechface/frame`` message
  per frame, or the VMC protocol's ``/VMC/Ext/Blend/Val`` + ``/VMC/Ext/Blend/Apply`` bundle that
  VTuber apps read as "perfect sync" ARKit blendshapes).

**Latency.** Frame ``t`` is stamped at ``t / 25`` s of the input. The sample at that time arrived
(microphone: was captured) at a wall-clock time known from its chunk: a chunk of ``n`` samples
received at ``T`` holds the sample ``n - k`` samples from its end at ``T - k / rate``.
``latency`` of a frame = the wall-clock time its values were emitted minus the arrival time of its
timestamp's sample: the model's look-ahead (``stream.latency_seconds``: 0.36 s for ``cnn``),
plus the wait for the chunk that completes it, plus computing. The first frame's latency is the
time from the first sound to the first value. For input that arrives faster than real time
(a file piped to stdin) the number measures only the processing, not a live delay.

Example:
    >>> from speechface import AUEstimator
    >>> import io, numpy as np
    >>> est = AUEstimator.create("mlp")
    >>> out = io.StringIO()
    >>> chunks = [(np.zeros(640, np.float32), None)] * 10          # 0.4 s of silence
    >>> stats = run_live(est, chunks, JsonLinesSink(out))
    >>> stats["frames"], out.getvalue().count("\\n")
    (10, 10)
"""

from __future__ import annotations

import json
import math
import queue
import socket
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..core.errors import AudioError

__all__ = ["LiveFrame", "JsonLinesSink", "UdpJsonSink", "OscSink", "osc_message", "osc_bundle",
           "parse_osc", "run_live", "microphone_chunks", "stdin_chunks", "file_chunks",
           "PCM_FORMATS"]

Chunk = tuple[np.ndarray, "float | None"]


@dataclass
class LiveFrame:
    """One output frame: index, timestamp ``index / fps`` (s), measured latency (s) and values."""

    index: int
    time: float
    latency: float
    values: np.ndarray
    labels: tuple[str, ...]

    def to_dict(self, decimals: int = 4) -> dict[str, Any]:
        """``{"frame", "time", "latency_ms", "values": {label: value}}``."""
        return {"frame": self.index, "time": round(self.time, 3),
                "latency_ms": round(self.latency * 1000, 1),
                "values": {k: round(float(v), decimals) for k, v in zip(self.labels, self.values)}}


# --------------------------------------------------------------------------- sinks
class JsonLinesSink:
    """Write one JSON object per frame and line (see :meth:`LiveFrame.to_dict`), flushed."""

    def __init__(self, stream: IO[str] | None = None, decimals: int = 4) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.decimals = decimals

    def send(self, frame: LiveFrame) -> None:
        self.stream.write(json.dumps(frame.to_dict(self.decimals), separators=(",", ":")) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


def _address(target: str | int) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` -> (host, port); host defaults to loopback."""
    text = str(target)
    host, _, port = text.rpartition(":")
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"expected PORT or HOST:PORT, got {text!r}") from None
    if not 0 < p < 65536:
        raise ValueError(f"port must be 1-65535, got {p}")
    return (host or "127.0.0.1"), p


class UdpJsonSink:
    """Send each frame as one UDP datagram holding its JSON object (UTF-8).

    Args:
        target: ``PORT`` (on 127.0.0.1) or ``HOST:PORT``.
    """

    def __init__(self, target: str | int, decimals: int = 4) -> None:
        self.addr = _address(target)
        self.decimals = decimals
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, frame: LiveFrame) -> None:
        data = json.dumps(frame.to_dict(self.decimals), separators=(",", ":")).encode()
        self.sock.sendto(data, self.addr)

    def close(self) -> None:
        self.sock.close()


def _osc_string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return b + b"\0" * (-len(b) % 4)


def osc_message(address: str, *args: Any) -> bytes:
    """An OSC 1.0 message: ints -> ``i`` (int32), floats -> ``f`` (float32), str -> ``s``.

    Example:
        >>> osc_message("/a", 1, 0.5).hex()     # "/a", ",if", 1, 0.5 (each padded to 4 bytes)
        '2f6100002c696600000000013f000000'
    """
    tags, payload = ",", b""
    for a in args:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError("OSC booleans are not supported here")
        if isinstance(a, (int, np.integer)):
            tags, payload = tags + "i", payload + struct.pack(">i", int(a))
        elif isinstance(a, (float, np.floating)):
            tags, payload = tags + "f", payload + struct.pack(">f", float(a))
        elif isinstance(a, str):
            tags, payload = tags + "s", payload + _osc_string(a)
        else:
            raise TypeError(f"cannot send {type(a).__name__} over OSC")
    return _osc_string(address) + _osc_string(tags) + payload


def osc_bundle(messages: Iterable[bytes]) -> bytes:
    """An OSC bundle (timetag "immediately") of encoded messages."""
    out = _osc_string("#bundle") + struct.pack(">Q", 1)
    for m in messages:
        out += struct.pack(">i", len(m)) + m
    return out


def parse_osc(packet: bytes) -> list[tuple[str, list[Any]]]:
    """Decode an OSC message or bundle into ``[(address, [args])]`` (types i, f, s).

    Example:
        >>> parse_osc(osc_message("/x", 3, 1.5, "hi"))
        [('/x', [3, 1.5, 'hi'])]
    """
    def string(b: bytes, i: int) -> tuple[str, int]:
        end = b.index(b"\0", i)
        return b[i:end].decode(), end + 1 + (-(end + 1 - i) % 4)

    if packet.startswith(b"#bundle\0"):
        out, i = [], 16
        while i < len(packet):
            (n,) = struct.unpack(">i", packet[i:i + 4])
            out += parse_osc(packet[i + 4:i + 4 + n])
            i += 4 + n
        return out
    addr, i = string(packet, 0)
    tags, i = string(packet, i)
    args: list[Any] = []
    for t in tags[1:]:
        if t == "i":
            args.append(struct.unpack(">i", packet[i:i + 4])[0])
            i += 4
        elif t == "f":
            args.append(struct.unpack(">f", packet[i:i + 4])[0])
            i += 4
        elif t == "s":
            s, i = string(packet, i)
            args.append(s)
        else:
            raise ValueError(f"OSC type tag {t!r} not supported")
    return [(addr, args)]


class OscSink:
    """Send each frame over OSC (UDP).

    Styles:

    - ``"speechface"``: one message ``/speechface/frame`` with ``i frame, f time, f latency_s``
      and then one float per value in the model's label order (the labels are sent once, first,
      as ``/speechface/labels s s s ...``);
    - ``"vmc"``: the VMC protocol's blendshape bundle: ``/VMC/Ext/Blend/Val s name f value`` for
      each value, then ``/VMC/Ext/Blend/Apply`` (VSeeFace, VNyan, Warudo ... read ARKit names
      as "perfect sync").
    """

    def __init__(self, target: str | int, style: str = "speechface") -> None:
        if style not in ("speechface", "vmc"):
            raise ValueError(f"OSC style must be 'speechface' or 'vmc', got {style!r}")
        self.addr = _address(target)
        self.style = style
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sent_labels = False

    def send(self, frame: LiveFrame) -> None:
        if self.style == "vmc":
            msgs = [osc_message("/VMC/Ext/Blend/Val", name, float(v))
                    for name, v in zip(frame.labels, frame.values)]
            msgs.append(osc_message("/VMC/Ext/Blend/Apply"))
            self.sock.sendto(osc_bundle(msgs), self.addr)
            return
        if not self._sent_labels:
            self.sock.sendto(osc_message("/speechface/labels", *frame.labels), self.addr)
            self._sent_labels = True
        self.sock.sendto(osc_message("/speechface/frame", int(frame.index), float(frame.time),
                                     float(frame.latency), *map(float, frame.values)), self.addr)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- the loop
def run_live(estimator: Any, chunks: Iterable[Chunk], sink: Any, *, sample_rate: int | None = None,
             max_frames: int | None = None, transform: Any = None,
             clock: Any = time.perf_counter) -> dict[str, Any]:
    """Stream ``chunks`` through ``estimator.stream()`` and send every final frame to ``sink``.

    Args:
        estimator: a streamable :class:`~speechface.speech.SpeechEstimator`.
        chunks: ``(samples, arrival_time)`` pairs; ``arrival_time`` (``clock()`` seconds when the
            chunk's last sample arrived) may be None: the time it is pushed.
        sink: an object with ``send(LiveFrame)``.
        sample_rate: the chunks' rate (default: the model's, 16 kHz).
        max_frames: stop after this many frames (None: at the end of the input, then flush).
        transform: optional ``f(values (n, dim)) -> values`` applied before sending (e.g.
            emotion control).
        clock: the time source (seconds).

    Returns:
        ``{"frames", "seconds_in", "latency_model_s", "first_latency_s", "mean_latency_s",
        "max_latency_s", "p95_latency_s"}``.

    Raises:
        StreamingError: the model cannot stream (the message says why and what to use).
    """
    st = estimator.stream(sample_rate=sample_rate)
    rate = float(st.sample_rate)
    fps = float(st.fps)
    labels = tuple(st.labels)
    arrivals: list[tuple[int, float]] = []  # (end sample, arrival time) of recent chunks
    n_in = 0
    lat = _LatencyStats()  # constant memory, however long the stream runs
    sent = 0

    def arrival(sample: int) -> float:
        for end, t in arrivals:
            if sample < end:
                return t - (end - 1 - sample) / rate
        end, t = arrivals[-1]
        return t - (end - 1 - sample) / rate

    def emit(values: np.ndarray) -> bool:
        nonlocal sent
        if len(values) == 0:
            return False
        if transform is not None:
            values = transform(values)
        now = clock()
        for row in values:
            first_sample = int(round(sent / fps * rate))
            latency = now - arrival(min(first_sample, n_in - 1))
            lat.add(latency)
            sink.send(LiveFrame(sent, sent / fps, latency, np.asarray(row), labels))
            sent += 1
            if max_frames is not None and sent >= max_frames:
                return True
        # forget chunks whose samples no unsent frame needs
        need = int(sent / fps * rate)
        while len(arrivals) > 1 and arrivals[0][0] <= need:
            arrivals.pop(0)
        return False

    done = False
    for samples, t_arr in chunks:
        x = np.asarray(samples)
        n = int(x.shape[0]) if x.ndim else 1
        if n == 0:
            continue
        n_in += n
        arrivals.append((n_in, clock() if t_arr is None else float(t_arr)))
        if emit(st.push(x)):
            done = True
            break
    if not done and n_in > 0:
        try:
            emit(st.flush())
        except AudioError:
            pass  # less than one frame of input in all: nothing to flush
    return {"frames": sent, "seconds_in": n_in / rate,
            "latency_model_s": float(st.latency_seconds), **lat.summary()}


class _LatencyStats:
    """First, mean, max and a 1 ms histogram (for percentiles) of latencies: constant memory."""

    def __init__(self, max_seconds: float = 30.0) -> None:
        self.hist = np.zeros(int(max_seconds * 1000) + 1, np.int64)
        self.n, self.total, self.max, self.first = 0, 0.0, -math.inf, math.nan

    def add(self, x: float) -> None:
        if self.n == 0:
            self.first = x
        self.n += 1
        self.total += x
        self.max = max(self.max, x)
        self.hist[min(max(int(x * 1000), 0), len(self.hist) - 1)] += 1

    def summary(self) -> dict[str, float]:
        if self.n == 0:
            return {k: math.nan for k in ("first_latency_s", "mean_latency_s", "p95_latency_s",
                                          "max_latency_s")}
        k = int(np.searchsorted(np.cumsum(self.hist), 0.95 * self.n))
        return {"first_latency_s": self.first, "mean_latency_s": self.total / self.n,
                "p95_latency_s": min((k + 1) / 1000, self.max), "max_latency_s": self.max}


# --------------------------------------------------------------------------- sources
def microphone_chunks(rate: int = 16000, block_seconds: float = 0.04, device: Any = None,
                      seconds: float | None = None) -> Iterator[Chunk]:
    """Capture mono float32 blocks from a microphone with ``sounddevice``.

    Each block's arrival time is taken in the audio callback (PortAudio's input time when it
    gives one). Stops after ``seconds`` (None: until interrupted).

    Raises:
        AudioError: sounddevice / PortAudio missing, or no input device.
    """
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        raise AudioError(f"the microphone needs sounddevice and PortAudio ({e}); pipe raw PCM "
                         "to 'speechface stream -' instead") from e
    q: queue.Queue[Chunk] = queue.Queue()
    block = max(1, int(round(rate * block_seconds)))

    def callback(indata: Any, frames: int, t: Any, status: Any) -> None:
        q.put((indata[:, 0].copy(), time.perf_counter()))

    try:
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=block,
                                device=device, callback=callback)
    except Exception as e:  # PortAudioError and friends: no device, bad rate
        raise AudioError(f"cannot open the microphone: {e}") from e
    total = 0
    limit = None if seconds is None else int(seconds * rate)
    with stream:
        while limit is None or total < limit:
            chunk = q.get()
            total += len(chunk[0])
            yield chunk


PCM_FORMATS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0), "s32le": ("<i4", 2147483648.0)}


def _read_exact(f: IO[bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return out


def _wav_header(f: IO[bytes], first: bytes) -> tuple[str, int, int]:
    """Parse a RIFF/WAVE header from a stream whose first 12 bytes are ``first``; stop at the
    data chunk. Returns (pcm format, rate, channels)."""
    if first[8:12] != b"WAVE":
        raise AudioError("stdin: a RIFF stream that is not WAVE")
    fmt = None
    while True:
        head = _read_exact(f, 8)
        if len(head) < 8:
            raise AudioError("stdin: the WAV stream ended before its data chunk")
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"data":
            break
        body = _read_exact(f, size + (size & 1))
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = {(1, 16): "s16le", (1, 32): "s32le", (3, 32): "f32le"}.get((tag, bits))
            if fmt is None:
                raise AudioError(f"stdin: WAV format {tag} with {bits} bits is not supported "
                                 "(16/32-bit PCM or 32-bit float)")
            wav = (fmt, int(rate), int(channels))
    if fmt is None:
        raise AudioError("stdin: the WAV stream has no fmt chunk before its data")
    return wav


def stdin_chunks(stream: IO[bytes] | None = None, *, pcm: str = "s16le", rate: int = 16000,
                 channels: int = 1, block_seconds: float = 0.04) -> tuple[Iterator[Chunk], int]:
    """Read audio from a binary stream (stdin): raw PCM, or WAV when it starts with ``RIFF``.

    Args:
        stream: the binary stream (default ``sys.stdin.buffer``).
        pcm: raw sample format: ``s16le`` (default), ``s32le`` or ``f32le`` (ignored for WAV).
        rate, channels: of raw PCM (a WAV header gives its own).
        block_seconds: how much is read per chunk (40 ms: one frame).

    Returns:
        ``(chunks, rate)``: an iterator of ``(mono float32 samples, arrival time)`` and the rate.

    Example:
        >>> import io
        >>> chunks, sr = stdin_chunks(io.BytesIO(np.zeros(1600, "<i2").tobytes()))
        >>> sr, [len(c) for c, _ in chunks]
        (16000, [640, 640, 320])
    """
    f = stream if stream is not None else sys.stdin.buffer
    first = _read_exact(f, 12)
    if first[:4] == b"RIFF":
        pcm, rate, channels = _wav_header(f, first)
        first = b""
    if pcm not in PCM_FORMATS:
        raise ValueError(f"unknown PCM format {pcm!r}; choose from {', '.join(PCM_FORMATS)}")
    if channels < 1 or rate <= 0:
        raise ValueError(f"bad raw audio settings: rate {rate}, channels {channels}")
    dtype, scale = PCM_FORMATS[pcm]
    frame_bytes = np.dtype(dtype).itemsize * channels
    block = max(1, int(round(rate * block_seconds))) * frame_bytes

    def gen(pending: bytes) -> Iterator[Chunk]:
        while True:
            data = pending + _read_exact(f, block - len(pending))
            pending = b""
            t = time.perf_counter()
            usable = len(data) - len(data) % frame_bytes
            if usable:
                x = np.frombuffer(data[:usable], dtype=dtype).astype(np.float32) / scale
                yield x.reshape(-1, channels).mean(axis=1), t
            if len(data) < block:
                return

    return gen(first), rate


def file_chunks(path: str | Path, *, block_seconds: float = 0.04, realtime: bool = False,
                loop: int = 1) -> tuple[Iterator[Chunk], int]:
    """A sound file in 40 ms chunks (16 kHz mono), ``realtime=True`` paced as if live.

    Returns ``(chunks, 16000)``; ``loop`` repeats the file (benchmarks).
    """
    from ..audio.waveform import load_audio

    wave = load_audio(path, target_rate=16000).numpy()
    block = max(1, int(round(16000 * block_seconds)))

    def gen() -> Iterator[Chunk]:
        t0 = time.perf_counter()
        done = 0
        for _ in range(loop):
            for i in range(0, len(wave), block):
                x = wave[i:i + block]
                done += len(x)
                if realtime:
                    wait = t0 + done / 16000 - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                yield x, time.perf_counter()

    return gen(), 16000
