"""SOURCE classification, video reading (real H.264 sample) and the atomic mp4 writer."""

from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.io.video import AtomicVideoWriter, VideoReader, resolve_source


def test_resolve_source_kinds(tmp_path):
    for name in ("b.jpg", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "clip.MP4").write_bytes(b"x")
    folder = resolve_source(str(tmp_path))
    assert folder.kind == "images" and [p.name for p in folder.paths] == ["a.png", "b.jpg"]
    assert resolve_source(str(tmp_path / "*.jpg")).paths[0].name == "b.jpg"
    assert resolve_source(str(tmp_path / "clip.MP4")).kind == "video"
    assert resolve_source("2").webcam == 2
    with pytest.raises(PosebhError, match="unknown file type"):
        resolve_source(str(tmp_path / "notes.txt"))
    with pytest.raises(PosebhError, match="matches no image"):
        resolve_source(str(tmp_path / "*.gif"))


def test_writer_round_trip_and_atomicity(tmp_path):
    frames = [np.full((48, 64, 3), 40 * n, np.uint8) for n in range(4)]
    path = tmp_path / "v.mp4"
    with AtomicVideoWriter(path, 10.0, (64, 48)) as writer:
        for frame in frames:
            writer.write(frame)
    with VideoReader(path) as reader:
        read = list(reader)
        assert reader.size == (64, 48) and reader.fps == pytest.approx(10.0)
    assert len(read) == 4
    assert abs(float(read[2].mean()) - 80) < 8  # lossy codec, same content
    # An exception while writing leaves neither the target nor a temporary file.
    failed = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError), AtomicVideoWriter(failed, 10.0, (64, 48)) as writer:
        writer.write(frames[0])
        raise RuntimeError("killed")
    assert not failed.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_reader_on_the_real_h264_sample(shared_data):
    with VideoReader(shared_data / "video" / "demo.mp4") as reader:
        assert reader.size == (960, 540) and reader.frame_count == 5
        assert sum(1 for _ in reader) == 5


def test_unreadable_video_is_a_user_error(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(PosebhError, match="bad.mp4"):
        VideoReader(path)
