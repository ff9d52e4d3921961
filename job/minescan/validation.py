"""Validating typed configuration and records: one place turns pydantic's errors into ours.

Every config model (scan, acquisition, training, ore mapping) and every record read back
from disk (manifest, model card, shard marker) is validated here, so a user sees the same
kind of message everywhere: one line naming the file or thing, and EVERY mistake in it,
not just the first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError, MinescanError

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, what: str, *, error: type[MinescanError] = InputError) -> M:
    """`model` validated from `data`, or `error` saying `what` and listing every mistake:
    ``f"{what} {describe(exc)}"``, e.g. "scan config is invalid at threshold: …"."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{what} {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """All of a validation's errors on one line: "at a.b: message; at c: message (2 mistakes)"."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        parts.append(f"at {where}: {err['msg'].removeprefix('Value error, ')}")
    suffix = f" ({len(parts)} mistakes)" if len(parts) > 1 else ""
    return "; ".join(parts) + suffix


def load_yaml_or_json(path: str | Path) -> dict:
    """Read a config file (YAML or JSON) into a dict, with a clear error if it is not one."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config {path}: {exc}") from None
    try:
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot parse config {path}: {first}") from None
    if not isinstance(data, dict):
        raise InputError(f"config {path} must hold a mapping of settings")
    return data
