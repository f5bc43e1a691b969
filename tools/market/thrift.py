"""A generic Thrift compact-protocol reader and writer, enough to edit a Parquet footer.

Structs are read into lists of `Field` (id, compact type, value) in wire order, so a struct can be
edited and written back without knowing its schema; unknown fields survive the round trip.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


@dataclass(slots=True)
class Field:
    """One struct field: its id, its compact type code and its value."""

    id: int
    type: int
    value: Any


@dataclass(slots=True)
class TList:
    """A list or set: element type code and values."""

    element_type: int
    values: list[Any]


Struct = list[Field]


def find(fields: Struct, field_id: int) -> Field | None:
    """The field with this id, if present."""
    for field in fields:
        if field.id == field_id:
            return field
    return None


class Reader:
    """Reads compact-protocol values from a buffer."""

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = memoryview(data)
        self.pos = pos

    def _varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def _zigzag(self) -> int:
        n = self._varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (TRUE, FALSE):
            # inside containers a bool is one byte (1 = true); as a field it lives in the type code
            byte = self.data[self.pos]
            self.pos += 1
            return byte == TRUE
        if kind == BYTE:
            self.pos += 1
            return struct.unpack_from("b", self.data, self.pos - 1)[0]
        if kind in (I16, I32, I64):
            return self._zigzag()
        if kind == DOUBLE:
            self.pos += 8
            return struct.unpack_from("<d", self.data, self.pos - 8)[0]
        if kind == BINARY:
            size = self._varint()
            self.pos += size
            return bytes(self.data[self.pos - size:self.pos])
        if kind in (LIST, SET):
            header = self.data[self.pos]
            self.pos += 1
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self._varint()
            return TList(element, [self.value(element) for _ in range(size)])
        if kind == STRUCT:
            return self.struct()
        raise ValueError(f"unsupported compact type {kind}")

    def struct(self) -> Struct:
        fields: Struct = []
        last = 0
        while True:
            header = self.data[self.pos]
            self.pos += 1
            if header == STOP:
                return fields
            delta, kind = header >> 4, header & 0x0F
            field_id = last + delta if delta else self._zigzag()
            if kind in (TRUE, FALSE):
                fields.append(Field(field_id, kind, kind == TRUE))
            else:
                fields.append(Field(field_id, kind, self.value(kind)))
            last = field_id


class Writer:
    """Writes compact-protocol values into a bytearray."""

    def __init__(self) -> None:
        self.out = bytearray()

    def _varint(self, n: int) -> None:
        while n >= 0x80:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def _zigzag(self, n: int) -> None:
        self._varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, value: Any) -> None:
        if kind in (TRUE, FALSE):
            self.out.append(TRUE if value else FALSE)
        elif kind == BYTE:
            self.out += struct.pack("b", value)
        elif kind in (I16, I32, I64):
            self._zigzag(value)
        elif kind == DOUBLE:
            self.out += struct.pack("<d", value)
        elif kind == BINARY:
            self._varint(len(value))
            self.out += value
        elif kind in (LIST, SET):
            size = len(value.values)
            if size < 15:
                self.out.append(size << 4 | value.element_type)
            else:
                self.out.append(0xF0 | value.element_type)
                self._varint(size)
            for item in value.values:
                self.value(value.element_type, item)
        elif kind == STRUCT:
            if isinstance(value, bytes):  # a struct encoded already
                self.out += value
            else:
                self.struct(value)
        else:
            raise ValueError(f"unsupported compact type {kind}")

    def struct(self, fields: Struct) -> None:
        last = 0
        for field in fields:
            kind = (TRUE if field.value else FALSE) if field.type in (TRUE, FALSE) else field.type
            delta = field.id - last
            if 0 < delta <= 15:
                self.out.append(delta << 4 | kind)
            else:
                self.out.append(kind)
                self._zigzag(field.id)
            if kind not in (TRUE, FALSE):
                self.value(kind, field.value)
            last = field.id
        self.out.append(STOP)


def encode_struct(fields: Struct) -> bytes:
    """The compact encoding of a struct."""
    writer = Writer()
    writer.struct(fields)
    return bytes(writer.out)
