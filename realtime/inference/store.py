"""The model store, read side: fetch bundles and read each symbol's pointer file.

One implementation for a local directory and for S3 (pyarrow's filesystems), so the same
code runs on a laptop and in production::

    <root>/<SYMBOL>/<version>/model.onnx
    <root>/<SYMBOL>/<version>/manifest.json
    <root>/<SYMBOL>/current.json

The live service only reads, so this half needs neither Dagster nor the lake stack; the
batch side's ``btc_platform.ml.store.ModelStore`` extends it with the writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Self

import pyarrow.fs as pafs

from realtime.inference.bundle import MANIFEST_FILE, MODEL_FILE
from realtime.inference.errors import BundleMissing, PointerInvalid
from realtime.inference.pointer import ModelPointer

BUNDLE_FILES = (MODEL_FILE, MANIFEST_FILE)
"""Written in this order, the manifest last: a reader that finds the manifest finds the model."""
POINTER_FILE = "current.json"


class BundleStore:
    """Bundles and pointers under ``root`` of ``filesystem``; ``uri`` names ``root`` in messages."""

    def __init__(self, filesystem: pafs.FileSystem, root: str, uri: str) -> None:
        self.filesystem = filesystem
        self.root = root.rstrip("/")
        self.uri = uri.rstrip("/")

    @classmethod
    def open(cls, location: str, s3_options: Mapping[str, str] | None = None) -> Self:
        """The store at ``location``: a local path, ``file://`` or ``s3://bucket/prefix``.

        ``s3_options`` are ``pyarrow.fs.S3FileSystem`` arguments (endpoint_override, region,
        access_key, secret_key). Nothing is created: writes create their own directories,
        and a reader must not need a writable store.
        """
        if location.startswith("s3://"):
            filesystem: pafs.FileSystem = pafs.S3FileSystem(**dict(s3_options or {}))
            return cls(filesystem, location.removeprefix("s3://"), location)
        path = Path(location.removeprefix("file://")).resolve()
        return cls(pafs.LocalFileSystem(), str(path), path.as_uri())

    def bundle_uri(self, symbol: str, version: str) -> str:
        return f"{self.uri}/{symbol.upper()}/{version}"

    def fetch_bundle(self, symbol: str, version: str, local_dir: Path) -> Path:
        """Copy a stored bundle to ``local_dir/<version>`` (for the loader); return that.

        ``BundleMissing`` if a file of the bundle is not in the store; other ``OSError``s
        (store unreachable) pass through. The copy is not verified: ``load_bundle`` does that.
        """
        source = self._path(symbol, version)
        paths = [f"{source}/{name}" for name in BUNDLE_FILES]
        for name, info in zip(BUNDLE_FILES, self.filesystem.get_file_info(paths), strict=True):
            if info.type != pafs.FileType.File:
                raise BundleMissing(self.bundle_uri(symbol, version), name)
        destination = local_dir / version
        destination.mkdir(parents=True, exist_ok=True)
        for name, path in zip(BUNDLE_FILES, paths, strict=True):
            try:
                with self.filesystem.open_input_stream(path) as stream:
                    (destination / name).write_bytes(stream.read())
            except FileNotFoundError:  # deleted between the listing and the read
                raise BundleMissing(self.bundle_uri(symbol, version), name) from None
        return destination

    def versions(self, symbol: str) -> list[str]:
        """Stored versions of ``symbol``, oldest first (versions sort by training time)."""
        selector = pafs.FileSelector(f"{self.root}/{symbol.upper()}", allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def read_pointer(self, symbol: str) -> ModelPointer | None:
        """The symbol's pointer, ``None`` if it has none yet; ``PointerInvalid`` if malformed."""
        path = self._pointer_path(symbol)
        if self.filesystem.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.filesystem.open_input_stream(path) as stream:
            text = stream.read()
        source = f"{self.uri}/{symbol.upper()}/{POINTER_FILE}"
        pointer = ModelPointer.from_json(text, source=source)
        if pointer.symbol.upper() != symbol.upper():
            raise PointerInvalid(
                "symbol", f"is {pointer.symbol!r} in {symbol.upper()}'s file", source=source
            )
        return pointer

    def _path(self, symbol: str, version: str) -> str:
        return f"{self.root}/{symbol.upper()}/{version}"

    def _pointer_path(self, symbol: str) -> str:
        return f"{self.root}/{symbol.upper()}/{POINTER_FILE}"
