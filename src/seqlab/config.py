"""Strict typed configs: dataclasses <-> plain dicts <-> YAML / JSON, with dotted overrides.

Every config in seqlab is a ``@dataclass`` whose fields carry type hints. :func:`from_dict`
builds one from a plain dict and rejects what a typo would silently accept elsewhere:

* an unknown key -> ``ConfigError("unknown key 'model.d_modle'; allowed keys: ...")``
* a wrong type   -> ``ConfigError("model.d_model: expected int, got str 'abc'")``
* a bad value    -> the dataclass's ``__post_init__`` raises, and the path is prefixed.

``to_dict`` is the inverse, so ``from_dict(C, to_dict(c)) == c``. A field may take over its own
(de)serialisation with ``field(metadata={"parse": fn(value, path), "dump": fn(obj)})`` — used
where the type of a section depends on a registered name (task and mixer configs).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from seqlab.errors import ConfigError

C = TypeVar("C")

__all__ = [
    "apply_overrides",
    "check_positive",
    "check_range",
    "from_dict",
    "load_file",
    "parse_override",
    "save_file",
    "to_dict",
]


# ---------------------------------------------------------------------------------------------
# dict -> dataclass


def from_dict(cls: type[C], data: Any, path: str = "") -> C:
    """Build the dataclass ``cls`` from ``data``, strictly (see the module docstring)."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{_where(path)}expected a mapping for {cls.__name__}, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        allowed = ", ".join(fields) or "(none)"
        raise ConfigError(f"unknown key {_join(path, unknown[0])!r}; allowed keys: {allowed}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        sub = _join(path, name)
        parse = fields[name].metadata.get("parse")
        kwargs[name] = parse(value, sub) if parse else _coerce(value, hints[name], sub)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        message = str(err)
        if path and message.split(":")[0] in fields:  # "d_model: ..." -> "model.d_model: ..."
            raise ConfigError(f"{path}.{message}") from None
        raise ConfigError(f"{_where(path)}{message}") from None


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the type hint ``tp``; returns the (possibly converted) value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, path)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else _type_error(path, _name(tp), value)
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{path}: expected one of {choices}, got {_show(value)}")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise _type_error(path, _name(tp), value)
        return [_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(path, _name(tp), value)
        return {_coerce(k, args[0], path): _coerce(v, args[1], _join(path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise _type_error(path, _name(tp), value)


# ---------------------------------------------------------------------------------------------
# dataclass -> dict


def to_dict(obj: Any) -> Any:
    """Plain-data form of a config (dicts, lists, scalars), inverse of :func:`from_dict`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            dump = f.metadata.get("dump")
            value = getattr(obj, f.name)
            out[f.name] = dump(value) if dump else to_dict(value)
        return out
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------------------------------
# files


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config; syntax errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({err.reason})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {_show(data)}")
    return data


def save_file(data: dict[str, Any], path: str | Path) -> None:
    """Write ``data`` as YAML (``.yaml``/``.yml``) or JSON, atomically."""
    from seqlab.fileio import atomic_write_text

    path = Path(path)
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)


# ---------------------------------------------------------------------------------------------
# dotted overrides: --set model.d_model=128

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b.c=VALUE"`` -> (["a", "b", "c"], value parsed as YAML: 128, 0.5, true, [a, b])."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads "3e-4" as a string; a user means the number
    return [k.strip() for k in key.split(".")], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` set (validation comes later)."""
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set {text!r}: {'.'.join(keys[: i + 1])} is not a section")
            node = child
        node[keys[-1]] = value
    return data


# ---------------------------------------------------------------------------------------------
# value checks for __post_init__


def check_positive(name: str, value: int | float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        expected = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{name}: expected a {expected} number, got {value!r}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: expected a value in [{low}, {high}], got {value!r}")


def check_one_source(**sources: Any) -> None:
    """At most one of the given data sources may be set (e.g. ``text``, ``dataset``, ``tokens``).

    Example::

        >>> check_one_source(text=None, dataset="nile")  # fine
        >>> check_one_source(text="a.txt", dataset="nile")
        Traceback (most recent call last):
        seqlab.errors.ConfigError: text and dataset are mutually exclusive: give one source, not ...
    """
    given = {k: v for k, v in sources.items() if v}
    names = list(sources)
    if len(given) > 1:
        raise ConfigError(
            f"{', '.join(names[:-1])} and {names[-1]} are mutually exclusive: give one source, not "
            + " and ".join(f"{k}={v!r}" for k, v in given.items())
        )


def check_split(split: Any, sizes: tuple[int, ...] = (2, 3)) -> None:
    """``split`` holds 2 or 3 fractions: train, validation[, test] (``sizes``: what is allowed)."""
    if len(split) not in sizes:
        names = "train, validation[, test]" if sizes == (2, 3) else "train, validation, test"
        raise ConfigError(f"split: expected {' or '.join(map(str, sizes))} fractions ({names}), got {split}")


# ---------------------------------------------------------------------------------------------
# helpers


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _type_error(path: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {expected}, got {_show(value)}")
