"""The template language of the models: ``ref``, ``source`` and ``var``, nothing else.

``{{ ref('silver.trades') }}`` names another model, ``{{ source('bronze.agg_trades') }}`` a
relation the caller gives, ``{{ var('window_start_sec') }}`` a caller value. It looks like
Jinja on purpose (dbt users read it at sight), but it is parsed by hand: a template cannot
run code, and everything else between ``{{ }}``, and any ``{% %}`` or ``{# #}``, is an
``UnknownTemplate`` naming the file and line rather than text passed on to DuckDB.

Templates are expanded wherever they appear, SQL comments included, as dbt does.
"""

from __future__ import annotations

import math
import re
from typing import Literal, NamedTuple

from dbt_like_sql.errors import InvalidVar, UnknownTemplate

IDENTIFIER = r"[a-z_][a-z0-9_]*"
RELATION_NAME = re.compile(rf"{IDENTIFIER}\.{IDENTIFIER}")
"""``<schema>.<name>``: what a ref or source names, and the DuckDB relation it reads."""
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_OPENING = re.compile(r"\{\{|\{%|\{#")
_CALL = re.compile(r"""\s*(ref|source|var)\(\s*(?:'([^']*)'|"([^"]*)")\s*\)\s*""")
_EXPECTED = "expected {{ ref('schema.name') }}, {{ source('schema.name') }} or {{ var('name') }}"
_INT64 = range(-(2**63), 2**63)

PlaceholderKind = Literal["ref", "source", "var"]


class Placeholder(NamedTuple):
    """One ``{{ kind('name') }}`` of a model; ``line`` is 1-based, for error messages."""

    kind: PlaceholderKind
    name: str
    line: int


Template = tuple[str | Placeholder, ...]
"""SQL text and placeholders, in file order."""


def parse_template(text: str, path: str) -> Template:
    """Split ``text`` into SQL and placeholders; ``UnknownTemplate`` on any other syntax."""
    segments: list[str | Placeholder] = []
    position = 0
    while opening := _OPENING.search(text, position):
        line = text.count("\n", 0, opening.start()) + 1
        closing = text.find("}}", opening.end())
        if opening.group() != "{{" or closing < 0:
            raise UnknownTemplate(path, line, _line_at(text, opening.start()))
        source_text = text[opening.start() : closing + 2]
        call = _CALL.fullmatch(text, opening.end(), closing)
        if call is None:
            raise UnknownTemplate(path, line, f"{source_text} ({_EXPECTED})")
        kind, name = call.group(1), call.group(2) if call.group(2) is not None else call.group(3)
        pattern = VAR_NAME if kind == "var" else RELATION_NAME
        if not pattern.fullmatch(name):
            raise UnknownTemplate(path, line, f"{source_text} ({_EXPECTED})")
        segments.append(text[position : opening.start()])
        segments.append(Placeholder(kind, name, line))
        position = closing + 2
    segments.append(text[position:])
    return tuple(segment for segment in segments if segment != "")


def relation_identifier(name: str) -> str:
    """``schema.name`` as a quoted DuckDB identifier; ``name`` is a checked ``RELATION_NAME``."""
    schema, table = name.split(".")
    return f'"{schema}"."{table}"'


def sql_literal(var: str, value: object) -> str:
    """``value`` as a SQL literal that reads back as exactly that value, and nothing more.

    int (int64 range) and finite float become numbers, str a quoted string; anything else,
    bool included, is an ``InvalidVar``: nothing a caller passes can become SQL syntax.
    """
    if isinstance(value, bool):
        raise InvalidVar(var, value, "bool is not a var type; pass an int or a str")
    # The base types' own methods read the value: a subclass cannot override them.
    if isinstance(value, int):
        number = int.__int__(value)
        if number not in _INT64:
            raise InvalidVar(var, value, "int outside the int64 range")
        # Parenthesised when negative: "-" after a "-" in the model would open a comment.
        return str(number) if number >= 0 else f"({number})"
    if isinstance(value, float):
        number = float.__float__(value)
        if not math.isfinite(number):
            raise InvalidVar(var, value, "float must be finite")
        # A bare 0.1 is a DECIMAL in DuckDB; parsing the shortest repr as DOUBLE is exact.
        return f"CAST('{number!r}' AS DOUBLE)"
    if isinstance(value, str):
        text = str.__str__(value)
        if "\x00" in text:
            raise InvalidVar(var, value, "str contains a NUL character")
        return "'" + text.replace("'", "''") + "'"
    raise InvalidVar(var, value, "vars are int, float or str")


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)].strip()
