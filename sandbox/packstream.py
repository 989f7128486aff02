"""PackStream v1, the value encoding under Bolt, and Bolt's message chunking (for the simulators).

Values: None, bool, int (signed 64 bit), float (64 bit), str, bytes, list, dict (str keys) and
`Structure(tag, fields)`. Integers take the smallest encoding that holds them, as Neo4j writes
them; tuples pack as lists. `unpack()` reads exactly one value and rejects trailing bytes.

A Bolt message is one packed Structure split into chunks (a 2-byte big-endian size, then that
many bytes), ended by a zero-size chunk: `chunked()` frames one message for writing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_CHUNK = 0xFFFF


@dataclass(frozen=True, slots=True)
class Structure:
    tag: int
    fields: tuple[Any, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0x7F:
            raise ValueError(f"structure tag must be 0..0x7F, got {self.tag:#x}")
        if len(self.fields) > 15:
            raise ValueError(f"a structure holds at most 15 fields, got {len(self.fields)}")


class PackStreamError(ValueError):
    """Bytes that are not valid PackStream v1 (or a value that cannot be packed)."""


# -- packing ----------------------------------------------------------------------------------
def pack(value: Any) -> bytes:
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xC0)
    elif value is True or value is False:
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, int):
        _pack_int(value, out)
    elif isinstance(value, float):
        out.append(0xC1)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _header(len(data), out, tiny=0x80, sized=(0xD0, 0xD1, 0xD2))
        out += data
    elif isinstance(value, bytes | bytearray):
        _header(len(value), out, tiny=None, sized=(0xCC, 0xCD, 0xCE))
        out += value
    elif isinstance(value, list | tuple):
        _header(len(value), out, tiny=0x90, sized=(0xD4, 0xD5, 0xD6))
        for item in value:
            _pack(item, out)
    elif isinstance(value, dict):
        _header(len(value), out, tiny=0xA0, sized=(0xD8, 0xD9, 0xDA))
        for key, item in value.items():
            if not isinstance(key, str):
                raise PackStreamError(f"map keys must be strings, got {type(key).__name__}")
            _pack(key, out)
            _pack(item, out)
    elif isinstance(value, Structure):
        out.append(0xB0 + len(value.fields))
        out.append(value.tag)
        for item in value.fields:
            _pack(item, out)
    else:
        raise PackStreamError(f"cannot pack {type(value).__name__}")


def _pack_int(value: int, out: bytearray) -> None:
    if -0x10 <= value <= 0x7F:
        out += struct.pack(">b", value)
    elif -0x80 <= value <= 0x7F:
        out += b"\xc8" + struct.pack(">b", value)
    elif -0x8000 <= value <= 0x7FFF:
        out += b"\xc9" + struct.pack(">h", value)
    elif -0x8000_0000 <= value <= 0x7FFF_FFFF:
        out += b"\xca" + struct.pack(">i", value)
    elif INT64_MIN <= value <= INT64_MAX:
        out += b"\xcb" + struct.pack(">q", value)
    else:
        raise PackStreamError(f"integer out of the 64-bit range: {value}")


def _header(size: int, out: bytearray, tiny: int | None, sized: tuple[int, int, int]) -> None:
    if tiny is not None and size < 0x10:
        out.append(tiny + size)
    elif size <= 0xFF:
        out += bytes((sized[0], size))
    elif size <= 0xFFFF:
        out += bytes((sized[1],)) + struct.pack(">H", size)
    elif size <= 0xFFFF_FFFF:
        out += bytes((sized[2],)) + struct.pack(">I", size)
    else:
        raise PackStreamError(f"too large to pack: {size} items")


# -- unpacking --------------------------------------------------------------------------------
def unpack(data: bytes) -> Any:
    reader = _Reader(memoryview(data))
    value = reader.value()
    if reader.pos != len(data):
        raise PackStreamError(f"{len(data) - reader.pos} trailing bytes after the value")
    return value


_SIZED = {  # marker -> (kind, width of the size field)
    0xD0: ("str", 1), 0xD1: ("str", 2), 0xD2: ("str", 4),
    0xCC: ("bytes", 1), 0xCD: ("bytes", 2), 0xCE: ("bytes", 4),
    0xD4: ("list", 1), 0xD5: ("list", 2), 0xD6: ("list", 4),
    0xD8: ("dict", 1), 0xD9: ("dict", 2), 0xDA: ("dict", 4),
}
_INTS = {0xC8: ">b", 0xC9: ">h", 0xCA: ">i", 0xCB: ">q"}
_SIZE_FORMATS = {1: ">B", 2: ">H", 4: ">I"}


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise PackStreamError(f"truncated: needed {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def number(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self) -> Any:
        marker = self.number(">B")
        if marker <= 0x7F:
            return marker
        if marker >= 0xF0:
            return marker - 0x100
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if marker in simple:
            return simple[marker]
        if marker == 0xC1:
            return self.number(">d")
        if marker in _INTS:
            return self.number(_INTS[marker])
        high, low = marker & 0xF0, marker & 0x0F
        if high == 0x80:
            return self.sized("str", low)
        if high == 0x90:
            return self.sized("list", low)
        if high == 0xA0:
            return self.sized("dict", low)
        if high == 0xB0:
            tag = self.number(">B")
            return Structure(tag, tuple(self.value() for _ in range(low)))
        if marker in _SIZED:
            kind, width = _SIZED[marker]
            return self.sized(kind, self.number(_SIZE_FORMATS[width]))
        raise PackStreamError(f"unknown marker {marker:#04x} at offset {self.pos - 1}")

    def sized(self, kind: str, size: int) -> Any:
        if kind == "str":
            try:
                return str(self.take(size), "utf-8")
            except UnicodeDecodeError as exc:
                raise PackStreamError(f"invalid UTF-8 in string: {exc}") from None
        if kind == "bytes":
            return bytes(self.take(size))
        if kind == "list":
            return [self.value() for _ in range(size)]
        out: dict[str, Any] = {}
        for _ in range(size):
            key = self.value()
            if not isinstance(key, str):
                raise PackStreamError(f"map key must be a string, got {type(key).__name__}")
            out[key] = self.value()
        return out


# -- chunking ---------------------------------------------------------------------------------
def chunked(message: bytes, max_chunk: int = MAX_CHUNK) -> bytes:
    """Frame one packed message: chunks of at most `max_chunk` bytes, then the 0x0000 end marker."""
    out = bytearray()
    for start in range(0, len(message), max_chunk):
        part = message[start:start + max_chunk]
        out += struct.pack(">H", len(part)) + part
    out += b"\x00\x00"
    return bytes(out)


def message(tag: int, *fields: Any) -> bytes:
    """A framed Bolt message, ready to write."""
    return chunked(pack(Structure(tag, fields)))
