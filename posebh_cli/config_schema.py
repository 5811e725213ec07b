"""Build frozen dataclasses from parsed TOML, validating every key with its full path.

The rules live on the dataclass fields: the type hint says the type, `field(metadata=...)` adds
`choices`, `min`/`max` and `gt` (strictly greater). Errors name the key path
(`stages[1].lr_scale`), what is expected, and suggest a close match for a misspelt key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

from posebh_cli.errors import PosebhError

T = TypeVar("T")


def rule(default: Any = dataclasses.MISSING, *, choices: tuple | None = None,
         min: float | None = None, max: float | None = None, gt: float | None = None,
         help: str = "") -> Any:
    """A dataclass field with validation metadata (and a default, which may be a tuple)."""
    metadata = {"choices": choices, "min": min, "max": max, "gt": gt, "help": help}
    return dataclasses.field(default=default, metadata=metadata)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} values"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return str(hint)


def _is_optional(hint: Any) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return True, args[0]
    return False, hint


def _convert(value: Any, hint: Any, path: str) -> Any:
    optional, hint = _is_optional(hint)
    if value is None and optional:
        return None
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise PosebhError(f"{path}: expected a table, got {value!r}")
        return build_dataclass(hint, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise PosebhError(f"{path}: expected {_describe(hint)}, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise PosebhError(f"{path}: expected {_describe(hint)}, got {value!r}")
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise PosebhError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PosebhError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PosebhError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise PosebhError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported schema type {hint!r} at {path}")


def _check_rules(value: Any, metadata: typing.Mapping[str, Any], path: str) -> None:
    choices = metadata.get("choices")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if item is None:
            continue
        if choices and item not in choices:
            close = difflib.get_close_matches(str(item), [str(c) for c in choices], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PosebhError(f"{path}: expected one of {', '.join(map(str, choices))}, "
                              f"got {item!r}{hint}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            low, high, gt = metadata.get("min"), metadata.get("max"), metadata.get("gt")
            if low is not None and item < low:
                raise PosebhError(f"{path}: expected a value >= {low}, got {item!r}")
            if high is not None and item > high:
                raise PosebhError(f"{path}: expected a value <= {high}, got {item!r}")
            if gt is not None and item <= gt:
                raise PosebhError(f"{path}: expected a value > {gt}, got {item!r}")


def unknown_key_error(key: str, valid: list[str], path: str) -> PosebhError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    where = f"{path}.{key}" if path else key
    return PosebhError(f"{where}: unknown key{hint} (valid keys: {', '.join(valid)})")


def build_dataclass(cls: type[T], table: dict[str, Any], path: str = "") -> T:
    """Validate `table` against dataclass `cls` (recursively) and build it."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in table:
        if key not in fields:
            raise unknown_key_error(key, list(fields), path)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name in table:
            value = _convert(table[name], hints[name], key_path)
            _check_rules(value, field.metadata, key_path)
            kwargs[name] = value
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise PosebhError(f"{key_path}: missing (expected {_describe(hints[name])})")
    return cls(**kwargs)


def dataclass_to_table(obj: Any) -> Any:
    """Plain TOML-ready data (tables, lists, scalars; None values dropped) from a dataclass."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = dataclass_to_table(getattr(obj, f.name))
            if value is not None:
                out[f.name] = value
        return out
    if isinstance(obj, (tuple, list)):
        return [dataclass_to_table(v) for v in obj]
    return obj
