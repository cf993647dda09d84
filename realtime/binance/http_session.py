"""The aiohttp session ownership shared by the REST and archive clients."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp


class SessionOwner:
    """Holds an aiohttp session: a passed-in one is borrowed, otherwise one is made and owned.

    The owned session is created lazily (aiohttp sessions belong to a running event loop) and
    closed by ``close()`` or on leaving ``async with``; a borrowed one is never closed here.
    """

    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._owns_session = session is None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if this client created it; a passed-in session stays open."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
