"""Live mode (``speechface stream``): stdin / file input, JSON lines, UDP and OSC to a local
receiver, latency measurement, errors."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES
from speechface import BlendshapeEstimator
from speechface.audio import load_audio
from speechface.avatars.live import JsonLinesSink, LiveFrame, file_chunks, run_live, stdin_chunks

REPO = Path(__file__).resolve().parents[1]
SPEECH = EXAMPLES / "speech.wav"


def stream_cli(*args: str, stdin: bytes | None = None, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "speechface.cli", "stream", *args],
                          input=stdin, capture_output=True, cwd=REPO, timeout=timeout, env=env)


def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10.0)
    return sock


def receive_all(sock: socket.socket, proc: subprocess.Popen, limit: int = 10_000) -> list[bytes]:
    """Datagrams until the sender exits and the socket is quiet (bounded by ``limit``)."""
    out = []
    for _ in range(limit):
        try:
            sock.settimeout(10.0 if proc.poll() is None else 0.5)
            out.append(sock.recv(65536))
        except TimeoutError:
            if proc.poll() is not None:
                break
    return out


def osc_decode(packet: bytes) -> list[tuple[str, list]]:
    """A minimal OSC 1.0 decoder written from the specification (independent of speechface)."""
    def pad(n: int) -> int:
        return (n + 4) & ~3  # string + its NUL, padded to 4

    if packet[:8] == b"#bundle\x00":
        msgs, i = [], 16
        while i < len(packet):
            size = int.from_bytes(packet[i:i + 4], "big")
            msgs += osc_decode(packet[i + 4:i + 4 + size])
            i += 4 + size
        return msgs
    end = packet.index(b"\x00")
    addr, i = packet[:end].decode(), pad(end)
    end = packet.index(b"\x00", i)
    tags, i = packet[i:end].decode(), i + pad(end - i)
    args: list = []
    for t in tags[1:]:
        if t in "if":
            args.append(struct.unpack(">" + t, packet[i:i + 4])[0])
            i += 4
        else:
            end = packet.index(b"\x00", i)
            args.append(packet[i:end].decode())
            i += pad(end - i)
    return [(addr, args)]


@pytest.fixture(scope="module")
def est() -> BlendshapeEstimator:
    import torch

    torch.manual_seed(0)
    return BlendshapeEstimator.create("cnn")


def test_run_live_gives_the_offline_frames_with_latency(est):
    chunks, rate = file_chunks(SPEECH)
    out = io.StringIO()
    stats = run_live(est, chunks, JsonLinesSink(out), sample_rate=rate)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    offline = est.predict(SPEECH)
    assert stats["frames"] == len(lines) == len(offline)
    assert [r["frame"] for r in lines] == list(range(len(offline)))
    got = np.array([[r["values"][k] for k in offline.labels] for r in lines])
    np.testing.assert_allclose(got, offline.values, atol=1e-4)  # 4 decimals in the JSON
    assert stats["latency_model_s"] == pytest.approx(0.36)
    assert all(r["latency_ms"] >= 0 for r in lines)
    assert stats["max_latency_s"] >= stats["mean_latency_s"] >= 0


def test_latency_counts_from_the_arrival_of_the_frames_sound(est):
    """With audio arriving in real time, no frame can come before its look-ahead arrived."""
    wave_ = load_audio(SPEECH).numpy()[:16000]
    clock = {"t": 0.0}

    def chunks():
        for i in range(0, len(wave_), 640):  # a fake clock: 40 ms per chunk, no compute time
            clock["t"] = (i + 640) / 16000
            yield wave_[i:i + 640], clock["t"]

    frames: list[LiveFrame] = []

    class Sink:
        def send(self, f: LiveFrame) -> None:
            frames.append(f)

    stats = run_live(est, chunks(), Sink(), clock=lambda: clock["t"])
    assert len(frames) == 25
    # frame t needs audio up to (t + 9) * 640 samples: latency = 9 frames = 0.36 s (+1 sample)
    for f in frames[:-9]:  # the last frames come at the flush, with the end of the input
        assert f.latency == pytest.approx(0.36, abs=1 / 16000 + 1e-9)
    assert stats["first_latency_s"] == pytest.approx(0.36, abs=1e-3)


def test_stdin_raw_pcm_and_wav_are_read_in_40ms_blocks():
    pcm = (np.sin(np.arange(4000) / 10) * 10000).astype("<i2")
    chunks, rate = stdin_chunks(io.BytesIO(pcm.tobytes()))
    parts = [c for c, _ in chunks]
    assert rate == 16000 and [len(p) for p in parts] == [640] * 6 + [160]
    np.testing.assert_allclose(np.concatenate(parts), pcm / 32768.0, atol=1e-7)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.stack([pcm, pcm], 1).tobytes())
    chunks, rate = stdin_chunks(io.BytesIO(buf.getvalue()))
    parts = [c for c, _ in chunks]
    assert rate == 8000 and len(parts[0]) == 320
    np.testing.assert_allclose(np.concatenate(parts), pcm / 32768.0, atol=1e-7)
    with pytest.raises(ValueError, match="unknown PCM format"):
        stdin_chunks(io.BytesIO(b"\0" * 64), pcm="u8")


def test_cli_stdin_wav_prints_json_lines():
    with open(SPEECH, "rb") as f:
        data = f.read()
    proc = stream_cli("-", "--random-weights", "cnn", stdin=data)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert len(lines) == len(load_audio(SPEECH)) // 640
    assert len(lines[0]["values"]) == 52 and "jawOpen" in lines[0]["values"]
    err = proc.stderr.decode()
    assert "RANDOM WEIGHTS" in err and "first sound to first value" in err


def test_cli_sends_udp_json_to_a_local_receiver():
    sock = receiver()
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "speechface.cli", "stream", str(SPEECH),
                             "--random-weights", "cnn", "--udp", str(port), "--max-frames", "40",
                             "--emotion", "happiness", "--intensity", "0.5"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        packets = receive_all(sock, proc)
        proc.wait(timeout=60)
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr.read().decode()
    frames = [json.loads(p) for p in packets]
    assert [f["frame"] for f in frames] == list(range(40))
    assert frames[3]["time"] == pytest.approx(0.12)
    assert all(f["values"]["mouthSmileLeft"] >= 0.3 - 1e-4 for f in frames)  # emotion added


@pytest.mark.parametrize("style", ["speechface", "vmc"])
def test_cli_sends_osc_to_a_local_receiver(style):
    sock = receiver()
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "speechface.cli", "stream", str(SPEECH),
                             "--random-weights", "cnn", "--osc", f"127.0.0.1:{port}",
                             "--osc-style", style, "--max-frames", "10"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        packets = receive_all(sock, proc)
        proc.wait(timeout=60)
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr.read().decode()
    msgs = [osc_decode(p) for p in packets]
    if style == "speechface":
        (addr, labels), = msgs[0]
        assert addr == "/speechface/labels" and len(labels) == 52 and labels[24] == "jawOpen"
        frames = [m[0] for m in msgs[1:]]
        assert [f[0] for f in frames] == ["/speechface/frame"] * 10
        assert [f[1][0] for f in frames] == list(range(10))
        assert all(len(f[1]) == 3 + 52 for f in frames)
        assert frames[1][1][1] == pytest.approx(0.04) and frames[1][1][2] > 0
    else:
        assert len(msgs) == 10
        for bundle in msgs:
            assert len(bundle) == 53 and bundle[-1] == ("/VMC/Ext/Blend/Apply", [])
            names = [args[0] for addr, args in bundle[:-1]]
            assert names[24] == "jawOpen" and {a for a, _ in bundle[:-1]} == {"/VMC/Ext/Blend/Val"}


@pytest.mark.parametrize("args, needle", [
    (["--random-weights", "rnn", str(SPEECH)], "cannot stream"),
    (["--random-weights", "cnn", str(SPEECH), "--udp", "99999"], "port must be 1-65535"),
    (["--random-weights", "cnn", str(SPEECH), "--udp", "1", "--osc", "2"], "not both"),
    (["--random-weights", "cnn", str(SPEECH), "--emotion", "bored"], "unknown emotion"),
    (["--random-weights", "cnn", "missing.wav"], "missing.wav"),
])
def test_cli_errors_are_one_line(args, needle):
    proc = stream_cli(*args)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and needle in err and "Traceback" not in err, err


def test_microphone_is_used_or_fails_clearly():
    proc = stream_cli("mic", "--random-weights", "cnn", "--seconds", "0.3", timeout=60)
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert proc.returncode == 0 or (proc.returncode == 2 and "microphone" in err), err


def test_default_live_model_is_the_packaged_streamable_one():
    from speechface.pretrained import DEFAULT_MODELS
    from speechface.speech.streaming import stream_support

    est = BlendshapeEstimator.from_pretrained(DEFAULT_MODELS["stream_blendshapes52"])
    assert est.pretrained and stream_support(est) is None
    assert est.stream().latency_seconds == pytest.approx(0.36)
    proc = stream_cli(str(SPEECH), "--max-frames", "5")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [r["frame"] for r in lines] == list(range(5))
    err = proc.stderr.decode()
    assert "cnn.blendshapes52-logmel [pretrained]" in err and "model latency 360 ms" in err


def _portaudio_reason() -> str | None:
    """Why the microphone cannot be exercised here (None: sounddevice and PortAudio load)."""
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        return f"needs sounddevice and PortAudio (pip install sounddevice; apt libportaudio2): {e}"
    return None


@pytest.mark.skipif(_portaudio_reason() is not None, reason=str(_portaudio_reason()))
def test_microphone_through_portaudio_equals_stdin(tmp_path):
    """The microphone source end to end through PortAudio and ALSA: ALSA's ``file`` plugin plays
    2 s of speech as the capture device; the streamed frames equal those of the same samples
    piped to stdin (the clock is not real time there, so no latency is checked)."""
    wave = load_audio(SPEECH).numpy()[: 2 * 16000].astype("<f4")
    raw = tmp_path / "mic.f32"
    wave.tofile(raw)
    (tmp_path / ".asoundrc").write_text(
        'pcm.!default {\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
        f'  infile "{raw}"\n  format "raw"\n}}\n')
    mic = stream_cli("mic", "--seconds", "2", env={**os.environ, "HOME": str(tmp_path)})
    assert mic.returncode == 0, mic.stderr.decode()
    ref = stream_cli("-", "--pcm", "f32le", stdin=wave.tobytes())
    assert ref.returncode == 0, ref.stderr.decode()
    got = [json.loads(x)["values"] for x in mic.stdout.decode().splitlines()]
    want = [json.loads(x)["values"] for x in ref.stdout.decode().splitlines()]
    assert len(got) == len(want) == 50
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        np.testing.assert_allclose(list(g.values()), list(w.values()), atol=1e-4)
