"""Typed errors for SBE frames that cannot be decoded; all are ``SbeDecodeError``s.

A caller that handles market data catches ``SbeDecodeError``, counts it by class name and
skips the frame; nothing else escapes the decoder (no ``IndexError``, no ``struct.error``).
"""

from __future__ import annotations


class SbeDecodeError(ValueError):
    """A frame that is not a well-formed message of the stream schema."""

    def __init__(self, detail: str, *, template_id: int | None = None, offset: int | None = None):
        self.detail = detail
        self.template_id = template_id
        self.offset = offset
        where = []
        if template_id is not None:
            where.append(f"template {template_id}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{detail} ({', '.join(where)})" if where else detail)


class TruncatedFrame(SbeDecodeError):
    """The frame ends before the message its header and group counts describe."""


class UnknownTemplate(SbeDecodeError):
    """The header names a template id this schema does not define."""


class SchemaMismatch(SbeDecodeError):
    """The header's schema id is not the stream schema's (1)."""


class BlockTooShort(SbeDecodeError):
    """A root or group block length on the wire is shorter than the fields the schema puts in it."""


class InsaneGroupCount(SbeDecodeError):
    """A group count far beyond any real event: a corrupt frame, not market data."""


class TrailingBytes(SbeDecodeError):
    """Bytes remain after the message's last field."""


class InvalidField(SbeDecodeError):
    """A field holds a value the schema forbids (a boolean other than 0/1, a symbol not UTF-8,
    a decimal that cannot be held as an exact e8 mantissa)."""


class EncodeError(ValueError):
    """An event that cannot be written as a frame (a value not representable at the exponent)."""
