"""PackStream v1 and Bolt framing of the Neo4j simulator, checked against the spec and the driver's own codec."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from neo4j._codec.packstream import v1 as driver_codec
from neo4j._codec.packstream._common import PackableBuffer, UnpackableBuffer

from sandbox.bolt_server import negotiate
from sandbox.packstream import INT64_MAX, INT64_MIN, PackStreamError, Structure, chunked, pack, unpack

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)


def _values(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=20)
        | st.dictionaries(st.text(max_size=10), children, max_size=20)
        | st.builds(lambda tag, fields: Structure(tag, tuple(fields)),
                    st.integers(0, 0x7F), st.lists(children, max_size=15))
    )


values = st.recursive(scalars, _values, max_leaves=40)


@given(values)
@settings(max_examples=150, deadline=None)
def test_round_trip(value: Any) -> None:
    assert unpack(pack(value)) == value


@given(st.recursive(scalars, lambda c: st.lists(c, max_size=10) | st.dictionaries(st.text(max_size=5), c,
                                                                                   max_size=10), max_leaves=30))
@settings(max_examples=200, deadline=None)
def test_agrees_with_the_driver_codec(value: Any) -> None:
    """What we write the driver reads back, and what the driver writes we read back."""
    theirs = driver_codec.Unpacker(UnpackableBuffer(pack(value))).unpack()
    assert _same(theirs, value)
    buffer = PackableBuffer()
    driver_codec.Packer(buffer).pack(value)
    assert _same(unpack(bytes(buffer.data)), value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b and type(a) is type(b)) or (isinstance(a, bytearray | bytes) and bytes(a) == bytes(b))


@pytest.mark.parametrize(("value", "encoded"), [
    (None, "c0"), (True, "c3"), (False, "c2"),
    (0, "00"), (127, "7f"), (-16, "f0"), (-17, "c8ef"), (-128, "c880"), (128, "c90080"),
    (-32768, "c98000"), (32768, "ca00008000"), (2**31, "cb0000000080000000"),
    (1.5, "c13ff8000000000000"),
    ("", "80"), ("a", "8161"), ("x" * 16, "d010" + "78" * 16), (b"\x01", "cc0101"),
    ([], "90"), ([1, 2], "920102"), ({}, "a0"), ({"a": 1}, "a1816101"),
    (Structure(0x70, ({},)), "b170a0"), (Structure(0x0F), "b00f"),
])
def test_known_encodings(value: Any, encoded: str) -> None:
    assert pack(value).hex() == encoded
    assert unpack(bytes.fromhex(encoded)) == value


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_integers_take_the_smallest_encoding(n: int) -> None:
    size = len(pack(n))
    expected = 1 if -16 <= n <= 127 else 2 if -128 <= n <= 127 else 3 if -2**15 <= n < 2**15 else \
        5 if -2**31 <= n < 2**31 else 9
    assert size == expected


@pytest.mark.parametrize("bad", [b"", b"\xc9\x00", b"\x81", b"\xd0\x05ab", b"\x01\x02", b"\xc7", b"\xa1\x01\x01",
                                 b"\x81\xff"])
def test_rejects_malformed_bytes(bad: bytes) -> None:
    with pytest.raises(PackStreamError):
        unpack(bad)


def test_rejects_unpackable_values() -> None:
    with pytest.raises(PackStreamError):
        pack(2**63)
    with pytest.raises(PackStreamError):
        pack({1: "x"})
    with pytest.raises(PackStreamError):
        pack(object())
    with pytest.raises(ValueError):
        Structure(0x80)


def test_chunking_splits_and_terminates() -> None:
    data = bytes(range(256)) * 600  # 153600 bytes: three chunks
    framed = chunked(data)
    parts, pos = [], 0
    while True:
        (size,) = struct.unpack(">H", framed[pos:pos + 2])
        pos += 2
        if size == 0:
            break
        parts.append(framed[pos:pos + size])
        pos += size
    assert [len(p) for p in parts] == [65535, 65535, 22530]
    assert b"".join(parts) == data and pos == len(framed)
    assert chunked(b"") == b"\x00\x00"


def _proposal(major: int, minor: int, span: int = 0) -> bytes:
    return bytes((0, span, minor, major))


SUPPORTED = ((5, 4), (5, 3), (5, 2), (5, 1), (5, 0), (4, 4))


@pytest.mark.parametrize(("proposals", "agreed"), [
    # the driver 6.x offer: manifest marker, 5.8..5.0, 4.4..4.2, 3.0
    (_proposal(255, 1) + _proposal(5, 8, 8) + _proposal(4, 4, 2) + _proposal(3, 0), (5, 4)),
    (_proposal(5, 2) + _proposal(4, 4) + bytes(8), (5, 2)),
    (_proposal(4, 4, 2) + _proposal(5, 4) + bytes(8), (4, 4)),  # the client's order decides
    (_proposal(5, 9, 3) + _proposal(4, 3, 3) + bytes(8), None),
    (_proposal(3, 0) + bytes(12), None),
])
def test_version_negotiation(proposals: bytes, agreed: tuple[int, int] | None) -> None:
    assert negotiate(proposals, SUPPORTED) == agreed
