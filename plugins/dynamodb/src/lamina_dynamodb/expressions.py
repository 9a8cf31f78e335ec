"""The DynamoDB expressions the backend sends: projections, filters and updates.

Column names go through ``ExpressionAttributeNames`` placeholders and values through
``ExpressionAttributeValues`` ones, so that no name or value is ever spliced into an
expression. A ``FilterExpression`` only narrows what a scan sends back: it keeps every
row the filter matches (and maybe more), and the exact match (types, ``1`` vs ``1.0``
vs ``True``) is always decided by the backend with the core's rule. Each builder keeps
within DynamoDB's limits on expression length and operand counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lamina.keyvalue.backend import Row
from lamina_dynamodb.codec import KEY_ATTRIBUTE, encode_item, encode_value, escape_name

__all__ = ["filter_plan", "projection_names", "update_params"]

_UPDATE_FIELDS_PER_REQUEST = 100  # keeps an UpdateExpression well under its 4 KB limit
_IN_LIMIT = 100  # operands of a FilterExpression IN
_FILTER_EXPRESSION_LIMIT = 3500  # characters; DynamoDB allows 4 KB


def projection_names(columns: Sequence[str], prefix: str) -> dict[str, str]:
    """The placeholders of a ``ProjectionExpression`` of the key and ``columns``
    (``#k``, then ``#<prefix>0``, ...); the expression is ``", ".join(names)``."""
    names = {"#k": KEY_ATTRIBUTE}
    names.update({f"#{prefix}{i}": escape_name(c) for i, c in enumerate(columns)})
    return names


def update_params(table: str, key: str, row: Row) -> list[dict[str, Any]]:
    """The ``UpdateItem`` requests of a column update (one unless the row has more than
    100 fields), checked against the item limits before anything is sent."""
    encoded = encode_item(key, row)  # checks nesting, key length and the fields' size
    del encoded[KEY_ATTRIBUTE]
    fields = list(encoded.items())
    requests = []
    for start in range(0, len(fields), _UPDATE_FIELDS_PER_REQUEST):
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets = []
        for i, (name, value) in enumerate(fields[start : start + _UPDATE_FIELDS_PER_REQUEST]):
            names[f"#f{i}"] = name
            values[f":v{i}"] = value
            sets.append(f"#f{i} = :v{i}")
        requests.append(
            {
                "TableName": table,
                "Key": {KEY_ATTRIBUTE: {"S": key}},
                "UpdateExpression": "SET " + ", ".join(sets),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        )
    return requests


def _filter_value(value: Any) -> dict[str, Any] | None:
    """The attribute value DynamoDB can compare ``value`` with, or ``None``."""
    kind = type(value)
    if kind is str or kind is bytes or kind is bool:
        return encode_value(value)
    if kind is int:
        encoded = encode_value(value)
        return encoded if "N" in encoded else None
    return None  # floats, big ints and None: the backend matches them


def filter_plan(
    checked: dict[str, tuple[Any, ...]], union: bool
) -> tuple[str | None, dict[str, str], dict[str, Any]] | None:
    """A server-side ``FilterExpression`` that keeps every row the filter matches (and
    maybe more), its names and values; ``None`` when no row can match."""
    if not checked:
        return None, {}, {}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses = []
    for i, (column, wanted) in enumerate(checked.items()):
        if not wanted:
            if union:
                continue  # this column matches no row; the others may
            return None
        name = f"#q{i}"
        names[name] = escape_name(column)
        natives = [_filter_value(w) for w in wanted]
        plain = [v for v in natives if v is not None and "BOOL" not in v]
        if any(v is None for v in natives) or len(plain) > _IN_LIMIT:
            clauses.append(f"attribute_exists({name})")
            continue
        parts = []
        if plain:
            holders = []
            for j, value in enumerate(plain):
                holders.append(f":q{i}_{j}")
                values[holders[-1]] = value
            parts.append(f"{name} IN ({', '.join(holders)})")
        for j, value in enumerate(v for v in natives if v is not None and "BOOL" in v):
            values[f":b{i}_{j}"] = value
            parts.append(f"{name} = :b{i}_{j}")
        clauses.append("(" + " OR ".join(parts) + ")")
    if not clauses:
        return None
    expression = (" OR " if union else " AND ").join(clauses)
    if len(expression) > _FILTER_EXPRESSION_LIMIT:
        return None, {}, {}  # too long to send: every row comes back, the backend matches
    return expression, names, values
