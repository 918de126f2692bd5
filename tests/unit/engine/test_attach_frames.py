"""The attach protocol's framing: whole frames out, partial ones kept, oversize refused."""

from __future__ import annotations

import pytest

from engine.runtime.attach import EXIT, HEADER, MAX_FRAME, STDOUT, frame, split_frames


def test_frames_split_across_reads() -> None:
    wire = frame(STDOUT, b"hello") + frame(EXIT, b"3")
    buf = bytearray(wire[:7])
    assert list(split_frames(buf)) == []  # half a frame: nothing yet, nothing lost
    buf += wire[7:]
    assert list(split_frames(buf)) == [(STDOUT, b"hello"), (EXIT, b"3")]
    assert buf == bytearray()


def test_empty_payload_and_leftover() -> None:
    buf = bytearray(frame(EXIT) + frame(STDOUT, b"ab")[:-1])
    assert list(split_frames(buf)) == [(EXIT, b"")]
    assert len(buf) == HEADER.size + 1


def test_oversize_frame_is_refused() -> None:
    buf = bytearray(HEADER.pack(STDOUT, MAX_FRAME + 1))
    with pytest.raises(ValueError, match="too large"):
        list(split_frames(buf))
