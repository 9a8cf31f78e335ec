"""The values and indexes the key-value contract suite writes and checks.

Every value a row may hold, chosen to catch lossy or sloppy encodings (decimal floats,
64-bit and 38-digit int limits, array dtypes, shapes and memory orders), the values no
backend may store, and the batch sizes around DynamoDB's request limits (25 writes,
100 reads), which any backend that cuts its requests into batches must get right at
the edges.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.values import values_equal

__all__ = [
    "BAD_VALUES",
    "BATCH_SIZES",
    "ONE_ROW",
    "SAMPLE_VALUES",
    "VALUE_SAMPLES",
    "assert_values_equal",
    "rng_array",
    "row_index",
]


def assert_values_equal(actual: Any, expected: Any) -> None:
    """Assert strict equality of stored values (types, float signs and nan, arrays)."""
    assert values_equal(actual, expected), f"\nactual:   {actual!r}\nexpected: {expected!r}"


def rng_array(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray[Any, Any]:
    """A reproducible array of random values spanning the whole range of ``dtype``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


#: Values of every kind a row may hold, with test ids. Floats are chosen to catch any
#: decimal or lossy encoding (0.1, 1e300, -0.0, subnormals, inf, nan), ints to catch
#: 64-bit and 38-digit limits, arrays to catch dtype, shape and memory-order slips.
VALUE_SAMPLES: tuple[tuple[str, Any], ...] = (
    ("none", None),
    ("true", True),
    ("false", False),
    ("int-zero", 0),
    ("int-negative", -7),
    ("int64-max", 2**63 - 1),
    ("int64-min", -(2**63)),
    ("uint64-max-plus-one", 2**64 + 1),
    ("int-40-digits", 10**40 + 1),
    ("int-huge-negative", -(2**200)),
    ("float-integral", 1.0),
    ("float-0.1", 0.1),
    ("float-1e300", 1e300),
    ("float-neg-zero", -0.0),
    ("float-pos-zero", 0.0),
    ("float-subnormal", 5e-324),
    ("float-max", 1.7976931348623157e308),
    ("float-third", 1 / 3),
    ("float-inf", math.inf),
    ("float-neg-inf", -math.inf),
    ("float-nan", math.nan),
    ("str-empty", ""),
    ("str-unicode", "µm ✓ 日本 \U0001f600"),
    ("str-control", "tab\tnew\nline\x00nul"),
    ("bytes-empty", b""),
    ("bytes-binary", bytes(range(256))),
    ("list-empty", []),
    ("list-mixed", [1, 2.5, "x", None, True, b"b", [2, [3.0]]]),
    ("dict-empty", {}),
    ("dict-nested", {"a": {"b": [1, {"c": None, "d": -0.0}]}, "e": [], "f": {}}),
    ("dict-with-array", {"arr": np.arange(4, dtype=np.int16), "n": 1}),
    ("list-of-arrays", [np.zeros((2, 2), dtype=np.float32), np.array(True)]),
    ("array-uint8-2d", rng_array((3, 4), "uint8", 1)),
    ("array-int64-1d", rng_array((17,), "int64", 2)),
    ("array-uint64-3d", rng_array((2, 3, 4), "uint64", 3)),
    ("array-float32-3d", rng_array((2, 3, 4), "float32", 4)),
    ("array-float64-special", np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 5e-324])),
    ("array-bool", rng_array((5,), "bool", 5)),
    ("array-complex64", rng_array((3,), "complex64", 6)),
    ("array-0d-int32", np.array(-5, dtype=np.int32)),
    ("array-0d-float64", np.array(0.1)),
    ("array-empty", np.zeros((0, 3), dtype=np.uint16)),
    ("array-fortran-order", np.asfortranarray(rng_array((4, 5), "int32", 7))),
    ("array-non-contiguous", rng_array((6, 8), "float64", 8)[::2, ::3]),
)

# Values no backend may store; each write of one is refused before anything is written.
BAD_VALUES: tuple[tuple[str, Any], ...] = (
    ("set", {1, 2}),
    ("complex", 1 + 2j),
    ("object", object()),
    ("dict-int-key", {1: "a"}),
    ("nested-bad", {"ok": [1, {2, 3}]}),
    ("array-str", np.array(["a", "b"])),
    ("array-object", np.array([None, 1], dtype=object)),
    ("array-datetime", np.array(["2020-01-01"], dtype="datetime64[D]")),
    ("masked-array", np.ma.array([1, 2], mask=[False, True])),
    ("generator", (i for i in range(2))),
)

# One value of each kind for rows with many fields.
ONE_ROW = {f"f{i}": value for i, (_, value) in enumerate(VALUE_SAMPLES)}

SAMPLE_VALUES: tuple[Any, ...] = (
    {"nested": [1, 2.5, None, True]},
    np.arange(6, dtype=np.int32).reshape(2, 3),
    "a string with unicode: µm ✓",
    b"\x00\x01bytes",
)


BATCH_SIZES = (0, 1, 25, 26, 100, 101)


def row_index(keys: Any, columns: tuple[str, ...] | None = None) -> DBIndex:
    """An index of the rows ``keys``: whole rows (of column ``"value"``) without
    ``columns``, else projected onto ``columns``."""
    cols = columns or ("value",)
    return DBIndex(dict.fromkeys(keys, cols), col_keys=columns)
