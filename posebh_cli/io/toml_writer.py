"""Write plain data (dicts, lists, scalars) as TOML - enough for resolved recipes.

The standard library reads TOML but does not write it; a resolved recipe only holds tables,
arrays of tables, arrays of scalars and scalars, which this covers without a new dependency.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, dict) for v in value)


def _emit(table: dict[str, Any], prefix: str, lines: list[str]) -> None:
    nested = []
    for key, value in table.items():
        if isinstance(value, dict) and not _inline_ok(value) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in nested:
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, dict):
            lines.extend(["", f"[{name}]"])
            _emit(value, name, lines)
        else:
            for item in value:
                lines.extend(["", f"[[{name}]]"])
                _emit(item, name, lines)


def _inline_ok(value: dict[str, Any]) -> bool:
    # Small flat tables (a dataset split: ann, images, boxes) read best inline.
    return len(value) <= 4 and all(not isinstance(v, (dict, list, tuple)) for v in value.values())


def dumps(table: dict[str, Any]) -> str:
    lines: list[str] = []
    _emit(table, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"
