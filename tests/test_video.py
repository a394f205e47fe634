"""speechface.render.video: frames, timestamps and 16 kHz audio from real and synthetic videos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from speechface.core.errors import DataError  # noqa: E402
from speechface.render.video import iter_video_frames, read_video, read_video_audio, video_info  # noqa: E402

SHARED = Path(os.environ.get("SPEECHFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CLIPS = SHARED / "data" / "av_clips"


def clip(*parts: str) -> Path:
    p = CLIPS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found at {p} (set SPEECHFACE_SHARED)")
    return p


def first_grid_clip() -> Path:
    folder = clip("grid_s1")
    return sorted(folder.glob("*.mp4"))[0]


def make_video(path: Path, n: int = 6, fps: int = 30, size: tuple[int, int] = (64, 48)) -> Path:
    """A silent mpeg4 video whose frame i is filled with the grey level 40 * i."""
    w, h = size
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


@pytest.mark.shared
def test_read_grid_clip_25fps():
    c = read_video(first_grid_clip())
    assert c.frames.shape == (75, 288, 360, 3)
    assert c.frames.dtype == np.uint8 and c.frames.flags["C_CONTIGUOUS"]
    assert c.fps == pytest.approx(25.0)
    np.testing.assert_allclose(c.times, np.arange(75) / 25.0, atol=1e-3)
    assert isinstance(c.audio, torch.Tensor) and c.audio.dtype == torch.float32 and c.audio.ndim == 1
    assert c.audio.shape[0] / 16000 == pytest.approx(3.0, abs=0.1)
    assert torch.isfinite(c.audio).all() and c.audio.abs().max() > 0.05  # real speech, not silence
    assert c.duration == pytest.approx(3.0, abs=0.01)
    assert c.frames.std() > 10  # a real picture


@pytest.mark.shared
def test_read_30fps_and_2997fps_clips_keep_their_timestamps():
    c = read_video(clip("more", "dfrf_vids_french.mp4"), max_frames=45)
    assert c.frames.shape[0] == 45 and c.fps == pytest.approx(30.0)
    np.testing.assert_allclose(np.diff(c.times), 1 / 30, atol=1e-3)
    # audio cut to the time the kept frames cover
    assert c.audio.shape[0] == pytest.approx((c.times[-1] + 1 / 30) * 16000, abs=2)
    c2 = read_video(clip("more", "v-express_AOC_gt.mp4"), max_frames=30)
    assert c2.fps == pytest.approx(29.97, abs=0.01)
    np.testing.assert_allclose(c2.times, np.arange(30) * 1001 / 30000, atol=1e-3)


@pytest.mark.shared
def test_read_mpg_program_stream():
    c = read_video(clip("grid_bbaf2n.mpg"), max_frames=10)
    assert c.frames.shape == (10, 288, 360, 3) and c.fps == pytest.approx(25.0)
    assert c.audio is not None and c.audio.shape[0] == pytest.approx(0.4 * 16000, abs=2)
    full = read_video_audio(clip("grid_bbaf2n.mpg"))
    assert full.shape[0] / 16000 == pytest.approx(2.98, abs=0.05)  # 44.1 kHz stereo mp2 -> 16k mono


@pytest.mark.shared
def test_iter_frames_matches_read_video():
    path = first_grid_clip()
    c = read_video(path, max_frames=5, audio=False)
    frames = list(iter_video_frames(path, max_frames=5))
    assert [f.index for f in frames] == list(range(5)) and c.audio is None
    for f, img, t in zip(frames, c.frames, c.times):
        assert f.image.flags["C_CONTIGUOUS"] and f.time == pytest.approx(t)
        np.testing.assert_array_equal(f.image, img)
    info = video_info(path)
    assert info["fps"] == pytest.approx(25.0) and info["has_audio"] and info["width"] == 360


def test_synthetic_video_without_audio(tmp_path):
    path = make_video(tmp_path / "syn.mp4", n=6, fps=30)
    c = read_video(path)
    assert c.audio is None and c.frames.shape == (6, 48, 64, 3)
    np.testing.assert_allclose(c.times, np.arange(6) / 30, atol=1e-6)
    np.testing.assert_allclose(c.frames[:, 10, 10, 0], 40 * np.arange(6), atol=6)  # frame order
    assert read_video_audio(path) is None


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("this is not a video")
    with pytest.raises(DataError, match="junk.mp4"):
        read_video(junk)
    import soundfile as sf

    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    with pytest.raises(DataError, match="no video stream"):
        read_video(wav)
    with pytest.raises(DataError, match="folder"):
        next(iter_video_frames(tmp_path))


def _click_mp4(path: Path, *, editlist: bool, rate: int = 16000) -> Path:
    """An MP4 with a video track and AAC speech: silence with one click at exactly 1.000 s.
    ``editlist=False`` leaves the encoder's warm-up unmarked, as the shared av_clips MP4s do."""
    audio = np.zeros(2 * rate, np.float32)
    audio[rate:rate + rate // 200] = 0.8
    with av.open(str(path), "w", options={} if editlist else {"use_editlist": "0"}) as out:
        vs = out.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        s = out.add_stream("aac", rate=rate)
        s.layout = "mono"
        for _ in range(50):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        for start in range(0, len(audio), 4096):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, start:start + 4096]),
                                           format="flt", layout="mono")
            f.sample_rate, f.pts = rate, start
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


@pytest.mark.parametrize("editlist", [True, False])
@pytest.mark.parametrize("rate", [16000, 48000])
def test_aac_warm_up_is_dropped_whether_or_not_the_mp4_marks_it(tmp_path, editlist, rate):
    from speechface.audio import load_audio
    from speechface.audio.waveform import AAC_PRIMING_SAMPLES, unsignalled_aac_priming

    path = _click_mp4(tmp_path / "click.mp4", editlist=editlist, rate=rate)
    assert unsignalled_aac_priming(path, "aac") == (0 if editlist else AAC_PRIMING_SAMPLES)
    assert unsignalled_aac_priming(path, "mp3") == 0
    for wave in (read_video_audio(path).numpy(), load_audio(path).numpy()):
        # kept, the warm-up would put the click 64 ms (at 16 kHz; 21 ms at 48 kHz) late
        assert np.argmax(np.abs(wave)) / 16000 == pytest.approx(1.0, abs=0.006)


@pytest.mark.shared
def test_shared_grid_mp4_speech_starts_without_the_encoder_warm_up():
    """The shared GRID MP4s carry 1024 unmarked AAC warm-up samples (near-silent, before the
    room noise): dropping them gives 3 s of speech for 3 s of video, not 3.064 s."""
    path = first_grid_clip()
    wave = read_video_audio(path).numpy()
    with av.open(str(path)) as c:
        decoded = sum(f.samples for f in c.decode(audio=0))
    assert len(wave) == decoded - 1024
    head = np.sqrt(np.mean(wave[:1024] ** 2))
    assert head > 1e-3  # the room noise, not the encoder's near-silent warm-up


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _elst(*media_times: int) -> bytes:
    entries = b"".join((1000).to_bytes(4, "big") + t.to_bytes(4, "big", signed=True)
                       + (1 << 16).to_bytes(4, "big") for t in media_times)
    return _box(b"elst", b"\0\0\0\0" + len(media_times).to_bytes(4, "big") + entries)


@pytest.mark.parametrize("edits, expected", [((), 0), ((0,), 0), ((1024,), 1024),
                                             ((-1, 1024), 1024), ((-1, 0), 0)])
def test_sound_edit_start_skips_empty_edits(tmp_path, edits, expected):
    from speechface.audio.waveform import _sound_edit_start

    hdlr = _box(b"hdlr", b"\0" * 8 + b"soun" + b"\0" * 12)
    edts = _box(b"edts", _elst(*edits)) if edits else b""
    trak = _box(b"trak", edts + _box(b"mdia", hdlr))
    path = tmp_path / "x.mp4"
    path.write_bytes(_box(b"ftyp", b"isom\0\0\0\0") + _box(b"moov", trak))
    assert _sound_edit_start(path) == expected
