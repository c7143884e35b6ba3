"""The engine's one JSON convention: strict JSON, with non-finite numbers as strings.

Strict JSON has no NaN or infinity, yet both carry meaning here: an FRC resolution of ``inf``
says "no detail resolved", a NaN score says "not computed". So every file the engine writes
(``run.json``, study results, metric reports) stores them as the strings ``"nan"``, ``"inf"``
and ``"-inf"``, and :func:`from_json` turns those strings back into floats. numpy scalars and
arrays become Python numbers and lists; tuples become lists; keys become strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError

NON_FINITE = ("nan", "inf", "-inf")


def json_float(value: float | None) -> float | str | None:
    """One number as a JSON primitive: None, a finite float, or ``"nan"``/``"inf"``/``"-inf"``."""
    if value is None:
        return None
    number = float(value)
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return "nan"
    return "inf" if number > 0 else "-inf"


def to_json(value: Any) -> Any:
    """``value`` as JSON primitives (see the module docstring); unknown types raise TypeError."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return json_float(float(value))
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON: {value!r}")


def from_json(value: Any) -> Any:
    """Inverse of :func:`to_json` for the non-finite numbers: ``"nan"`` -> ``nan`` etc."""
    if isinstance(value, str) and value in NON_FINITE:
        return float(value)
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def dumps(value: Any, *, indent: int | None = 1, sort_keys: bool = False) -> str:
    """Strict JSON text of ``value`` (through :func:`to_json`)."""
    return json.dumps(to_json(value), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as strict JSON, atomically (temporary file, then rename)."""
    from ptycho_engine.runs import atomic_write

    text = dumps(payload) + "\n"
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json`, non-finite numbers as floats.

    Raises
    ------
    DataError
        The file is missing, not JSON, or not a JSON object at the top level.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    result: dict[str, Any] = from_json(payload)
    return result
