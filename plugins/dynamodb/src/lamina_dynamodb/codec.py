"""How a lamina row is stored as a DynamoDB item, and back (the storage format).

DynamoDB numbers are decimals of at most 38 significant digits, so floats, big ints
and numpy arrays are stored in *tagged maps*. The format, on the wire types of the
low-level client (``{"S": ...}``, ``{"N": ...}``, ...):

* the item's partition key is the attribute :data:`KEY_ATTRIBUTE` (``"~key"``,
  type ``S``): the row key;
* every field of the row is one top-level attribute, named after the field;
* a name (field name or dict key) that starts with ``~`` is stored with one more
  ``~`` in front (``"~x"`` → ``"~~x"``), so that names starting with a single ``~``
  are free for the key attribute and the tags below;
* values: ``None`` → ``NULL``; ``bool`` → ``BOOL``; ``str`` → ``S``; ``bytes`` →
  ``B``; an ``int`` of at most 38 decimal digits → ``N``; a list → ``L``; a dict →
  ``M`` (names escaped as above); and, as tagged maps:

  - a ``float`` → ``{"~f": B}``: its 8 IEEE-754 bytes, big-endian (exact, ``-0.0``,
    ``inf`` and every ``nan`` included);
  - a larger ``int`` → ``{"~i": S}``: its hexadecimal digits (``int(s, 16)``),
    sign in front;
  - a numpy array → ``{"~a": B, "~t": S, "~s": L}``: the elements in C order, the
    dtype (``numpy.dtype.str``, byte order included) and the shape (a list of ``N``).

Native types where they are lossless keep the table readable by other tools and let
DynamoDB filter on strings, ints, bools and bytes server side.

Limits checked before anything is sent: an item may hold at most
:data:`MAX_ITEM_BYTES` bytes (sizes counted by DynamoDB's published rules, rounded
up), containers may nest at most :data:`MAX_NESTING` deep, and a row key may have at
most :data:`MAX_KEY_BYTES` bytes of UTF-8.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import numpy as np

from lamina.errors import LaminaError

__all__ = [
    "KEY_ATTRIBUTE",
    "MAX_ITEM_BYTES",
    "MAX_KEY_BYTES",
    "MAX_NESTING",
    "ItemTooLargeError",
    "decode_item",
    "decode_value",
    "encode_item",
    "encode_value",
    "escape_name",
    "item_size",
    "key_bytes",
    "unescape_name",
]

#: The partition key attribute (type ``S``) of every table this plugin uses.
KEY_ATTRIBUTE = "~key"

#: The largest item this plugin sends: DynamoDB's limit is "400 KB"; 400,000 bytes is
#: below every reading of it (and below moto's 405,000).
MAX_ITEM_BYTES = 400_000

#: The longest row key, in bytes of UTF-8 (DynamoDB's partition key limit).
MAX_KEY_BYTES = 2048

#: The deepest nesting of lists and dicts (tagged maps included) DynamoDB accepts,
#: counting a top-level list or map as 1.
MAX_NESTING = 31

_FLOAT_TAG = "~f"
_INT_TAG = "~i"
_ARRAY_TAG = "~a"
_DTYPE_TAG = "~t"
_SHAPE_TAG = "~s"
_MAX_NATIVE_INT = 10**38  # ints with fewer digits are exact DynamoDB numbers

_pack_double = struct.Struct(">d").pack
_unpack_double = struct.Struct(">d").unpack


class ItemTooLargeError(LaminaError, ValueError):
    """A row cannot be stored: its item would exceed DynamoDB's limits."""


class _NestingError(Exception):
    pass


def escape_name(name: str) -> str:
    """The stored attribute (or map key) name of field (or dict key) ``name``."""
    return "~" + name if name[:1] == "~" else name


def unescape_name(name: str) -> str | None:
    """The field name of a stored attribute name, or ``None`` for a reserved name."""
    if name[:1] != "~":
        return name
    if name[:2] == "~~":
        return name[1:]
    return None


def key_bytes(key: str) -> int:
    """The size of a row key in bytes of UTF-8."""
    return len(key) if key.isascii() else len(key.encode("utf-8"))


def encode_value(value: Any, depth: int = 0) -> dict[str, Any]:
    """The DynamoDB attribute value of a normalised lamina value.

    ``value`` must come from :func:`lamina.keyvalue.values.normalize_value`; ``depth``
    is the number of containers around it. Raises ``ValueError`` when containers nest
    deeper than :data:`MAX_NESTING`.
    """
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        if -_MAX_NATIVE_INT < value < _MAX_NATIVE_INT:
            return {"N": str(value)}
        return _tagged({_INT_TAG: {"S": format(value, "x")}}, depth)
    if kind is float:
        return _tagged({_FLOAT_TAG: {"B": _pack_double(value)}}, depth)
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is bytes:
        return {"B": value}
    if kind is list:
        if depth >= MAX_NESTING:
            raise _NestingError
        return {"L": [encode_value(v, depth + 1) for v in value]}
    if kind is dict:
        if depth >= MAX_NESTING:
            raise _NestingError
        return {"M": {escape_name(k): encode_value(v, depth + 1) for k, v in value.items()}}
    if kind is np.ndarray:
        return _tagged(
            {
                _ARRAY_TAG: {"B": value.tobytes(order="C")},
                _DTYPE_TAG: {"S": value.dtype.str},
                _SHAPE_TAG: {"L": [{"N": str(n)} for n in value.shape]},
            },
            depth,
        )
    raise ValueError(
        f"a value of type {kind.__name__} cannot be encoded; normalise it with "
        "lamina.keyvalue.values.normalize_value first"
    )


def _tagged(fields: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth >= MAX_NESTING:
        raise _NestingError
    return {"M": fields}


def encode_item(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB item of row ``key`` holding the normalised fields ``row``.

    Raises
    :class:`ItemTooLargeError` naming the row (and field) when the item would break
    DynamoDB's limits; nothing is sent by this function.
    """
    item: dict[str, Any] = {KEY_ATTRIBUTE: {"S": key}}
    for field, value in row.items():
        try:
            item[escape_name(field)] = encode_value(value)
        except _NestingError:
            raise ItemTooLargeError(
                f"row {key!r}, field {field!r}: lists and dicts nest deeper than "
                f"DynamoDB's limit of {MAX_NESTING} levels (floats, big ints and arrays "
                "inside count as one more level); flatten the value"
            ) from None
    check_item_size(key, item)
    return item


def check_item_size(key: str, item: dict[str, Any]) -> int:
    """Return the size of ``item``; raise :class:`ItemTooLargeError` if it is too large."""
    if key_bytes(key) > MAX_KEY_BYTES:
        raise ItemTooLargeError(
            f"row key {key[:40]!r}... has {key_bytes(key)} bytes of UTF-8; DynamoDB "
            f"partition keys hold at most {MAX_KEY_BYTES}"
        )
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        fields = sorted(
            (
                (_attribute_size(name, value), name)
                for name, value in item.items()
                if name != KEY_ATTRIBUTE
            ),
            reverse=True,
        )
        largest = ", ".join(f"{unescape_name(n)!r} ({s:,} bytes)" for s, n in fields[:3])
        raise ItemTooLargeError(
            f"row {key!r} would be a DynamoDB item of about {size:,} bytes, over the "
            f"limit of {MAX_ITEM_BYTES:,} bytes (400 KB, attribute names included); "
            f"largest fields: {largest}. Nothing of this write was sent; split the row "
            "or store large values elsewhere"
        )
    return size


def item_size(item: dict[str, Any]) -> int:
    """An upper bound of the size DynamoDB counts for ``item`` (its published rules:
    names and values in bytes, numbers 1 byte per digit plus 1, 3 bytes per list or map
    plus 1 per element)."""
    return sum(_attribute_size(name, value) for name, value in item.items())


def _attribute_size(name: str, value: dict[str, Any]) -> int:
    return key_bytes(name) + _value_size(value)


def _value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return key_bytes(v)
    if kind == "B":
        return len(v)
    if kind == "N":
        return len(v) + 1
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + key_bytes(k) + _value_size(x) for k, x in v.items())
    if kind in ("SS", "NS", "BS"):
        return 3 + sum(1 + len(x) + 1 for x in v)
    return 1  # BOOL, NULL


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)  # written by another tool: "1.5", "1E+3"
        return int(number) if number == number.to_integral_value() else float(number)


def decode_value(value: dict[str, Any]) -> Any:
    """The lamina value of a DynamoDB attribute value (see the module docstring)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return v
    if kind == "N":
        return _number(v)
    if kind == "M":
        if _FLOAT_TAG in v:
            return _unpack_double(v[_FLOAT_TAG]["B"])[0]
        if _ARRAY_TAG in v:
            dtype = np.dtype(v[_DTYPE_TAG]["S"])
            shape = tuple(int(n["N"]) for n in v[_SHAPE_TAG]["L"])
            return np.frombuffer(v[_ARRAY_TAG]["B"], dtype=dtype).reshape(shape).copy()
        if _INT_TAG in v:
            return int(v[_INT_TAG]["S"], 16)
        out = {}
        for name, x in v.items():
            field = unescape_name(name)
            if field is not None:
                out[field] = decode_value(x)
        return out
    if kind == "BOOL":
        return v
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(v)
    if kind == "L":
        return [decode_value(x) for x in v]
    if kind == "NS":
        return [_number(x) for x in v]
    if kind in ("SS", "BS"):
        return list(v)
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def decode_item(item: dict[str, Any], columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The fields of a stored item (only ``columns`` unless ``None``)."""
    row: dict[str, Any] = {}
    if columns is None:
        for name, value in item.items():
            field = unescape_name(name)
            if field is not None:
                row[field] = decode_value(value)
    else:
        for column in columns:
            value = item.get(escape_name(column))
            if value is not None:
                row[column] = decode_value(value)
    return row
