"""The key-value index scheme: rows by string key, each a dict of columns.

The standard index (``DBIndex``), the user index forms and result shaping
(``KeyValueScheme``), the layer (``KeyValueLayer``, ``build_db_layer``), the backend
protocol (``DBBackend``) with the rules every key-value backend shares, and the core's
in-memory backend (``MemoryKeyValueBackend``, ``build_memory_db_layer``). Names are
imported on first use.
"""

from __future__ import annotations

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "DBIndex": "lamina.keyvalue.index",
    "KeyValueScheme": "lamina.keyvalue.scheme",
    "MissingKeyError": "lamina.keyvalue.scheme",
    "KeyValueLayer": "lamina.keyvalue.layer",
    "build_db_layer": "lamina.keyvalue.layer",
    "DBBackend": "lamina.keyvalue.backend",
    "batch_count": "lamina.keyvalue.backend",
    "key_batch": "lamina.keyvalue.backend",
    "prepare_rows": "lamina.keyvalue.backend",
    "MemoryKeyValueBackend": "lamina.keyvalue.memory",
    "build_memory_db_layer": "lamina.keyvalue.memory",
    "normalize_value": "lamina.keyvalue.values",
    "values_equal": "lamina.keyvalue.values",
}

__all__ = sorted(_LAZY)


__getattr__ = module_getattr(__name__, _LAZY, globals())
