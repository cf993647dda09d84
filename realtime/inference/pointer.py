"""The model pointer ``<store>/<SYMBOL>/current.json``: which version serves at each stage.

The batch side moves it (``btc_platform.ml.pointer``: advance, rollback) and the live service
reads it, so the dataclass and its JSON live here, importable without the batch stack. A
pointer that is not UTF-8 JSON of the right shape raises ``PointerInvalid``: a reader never
sees a ``KeyError`` or a half-built pointer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from realtime.inference.errors import PointerInvalid

DOCUMENT = "(document)"
"""The ``field`` of a ``PointerInvalid`` about the file as a whole (not UTF-8, not JSON)."""

_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""What a version may look like (``20260102T000000Z-1a2b3c4d``): one safe path component."""


class Stage(StrEnum):
    CANDIDATE = "candidate"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"
    """Left production (replaced or rolled back); kept in the store and the registry."""


@dataclass(frozen=True)
class ModelPointer:
    """The versions at each serving stage of one symbol, and production's history."""

    symbol: str
    shadow: str | None = None
    canary: str | None = None
    production: str | None = None
    previous: tuple[str, ...] = ()
    """Earlier production versions, newest last (what a rollback returns to)."""
    updated_at: str = ""
    history: tuple[dict, ...] = field(default=())
    """Every transition: ``{"at", "version", "stage", "action"}``, oldest first."""

    def stage_of(self, version: str) -> Stage:
        for stage in (Stage.PRODUCTION, Stage.CANARY, Stage.SHADOW):
            if getattr(self, stage.value) == version:
                return stage
        return Stage.CANDIDATE

    def to_json(self) -> str:
        return json.dumps(
            {
                "symbol": self.symbol,
                "shadow": self.shadow,
                "canary": self.canary,
                "production": self.production,
                "previous": list(self.previous),
                "updated_at": self.updated_at,
                "history": list(self.history),
            },
            indent=2,
        )

    @staticmethod
    def from_json(text: str | bytes, *, source: str = "current.json") -> ModelPointer:
        """Parse a pointer; ``PointerInvalid`` (naming ``source`` and the field) if malformed.

        Only ``symbol`` is required; unknown fields are ignored, so an older reader accepts a
        pointer written by a newer batch side.
        """
        try:
            values = _parse(text)
            return ModelPointer(
                symbol=_symbol(values),
                shadow=_version(values, "shadow"),
                canary=_version(values, "canary"),
                production=_version(values, "production"),
                previous=tuple(_list_of(values, "previous", _is_version, "a version name")),
                updated_at=_string(values, "updated_at"),
                history=tuple(_list_of(values, "history", _is_object, "a JSON object")),
            )
        except PointerInvalid as error:
            raise PointerInvalid(error.field, error.problem, source=source) from None


def _is_object(item: object) -> bool:
    return isinstance(item, dict)


def _parse(text: str | bytes) -> dict[str, Any]:
    def no_constant(name: str) -> None:
        raise PointerInvalid(DOCUMENT, f"{name} is not JSON")

    try:
        values = json.loads(text, parse_constant=no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PointerInvalid(DOCUMENT, f"is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise PointerInvalid(DOCUMENT, f"must be a JSON object, got {type(values).__name__}")
    return values


def _symbol(values: dict[str, Any]) -> str:
    if "symbol" not in values:
        raise PointerInvalid("symbol", "is missing")
    symbol = values["symbol"]
    if not isinstance(symbol, str) or not symbol:
        raise PointerInvalid("symbol", f"must be a non-empty string, got {symbol!r}")
    return symbol


def _version(values: dict[str, Any], name: str) -> str | None:
    version = values.get(name)
    if version is not None and not _is_version(version):
        raise PointerInvalid(name, f"must be a version name or null, got {version!r}")
    return version


def _is_version(version: object) -> bool:
    # A version becomes a path component in the store and in the service's cache: a name
    # like "../x" must never get that far.
    return isinstance(version, str) and _VERSION_NAME.fullmatch(version) is not None


def _string(values: dict[str, Any], name: str) -> str:
    text = values.get(name, "")
    if not isinstance(text, str):
        raise PointerInvalid(name, f"must be a string, got {text!r}")
    return text


def _list_of(
    values: dict[str, Any], name: str, valid: Callable[[object], bool], what: str
) -> list[Any]:
    items = values.get(name, [])
    if not isinstance(items, list):
        raise PointerInvalid(name, f"must be a list, got {type(items).__name__}")
    for index, item in enumerate(items):
        if not valid(item):
            raise PointerInvalid(f"{name}[{index}]", f"must be {what}, got {item!r}")
    return items
