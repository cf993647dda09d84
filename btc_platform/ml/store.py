"""The model store, write side: ``realtime.inference.store.BundleStore`` plus the writes.

The layout and the reads live in realtime (the live service reads the same store without
the batch stack)::

    <root>/<SYMBOL>/<version>/model.onnx
    <root>/<SYMBOL>/<version>/manifest.json
    <root>/<SYMBOL>/current.json

Bundles are written file by file with the manifest last: a reader that finds the manifest
finds the model. The pointer is written to a temporary name and moved over
``current.json``: a rename locally, a server-side copy on S3, either way a reader sees the
old pointer or the new one, never a partial file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.fs as pafs

from realtime.inference.bundle import MANIFEST_FILE
from realtime.inference.pointer import ModelPointer
from realtime.inference.store import BUNDLE_FILES, POINTER_FILE, BundleStore

__all__ = ["BUNDLE_FILES", "POINTER_FILE", "ModelStore"]


class ModelStore(BundleStore):
    """Bundles and pointers under ``root`` of ``filesystem``, read and written."""

    def put_bundle(self, symbol: str, version: str, bundle_dir: Path) -> str:
        """Copy a local bundle directory into the store; return its URI. A version is written
        once: an existing one is refused (versions name artefacts, they are never reused)."""
        target = self._path(symbol, version)
        if (
            self.filesystem.get_file_info(f"{target}/{MANIFEST_FILE}").type
            != pafs.FileType.NotFound
        ):
            raise FileExistsError(f"bundle {symbol}/{version} is already in {self.uri}")
        self.filesystem.create_dir(target, recursive=True)
        for name in BUNDLE_FILES:
            self._write(f"{target}/{name}", (bundle_dir / name).read_bytes())
        return self.bundle_uri(symbol, version)

    def write_pointer(self, pointer: ModelPointer) -> None:
        """Replace the symbol's pointer in one step (temporary file, then a move over it)."""
        directory = f"{self.root}/{pointer.symbol.upper()}"
        self.filesystem.create_dir(directory, recursive=True)
        temporary = f"{directory}/.{POINTER_FILE}.{uuid.uuid4().hex}"
        self._write(temporary, pointer.to_json().encode())
        self.filesystem.move(temporary, self._pointer_path(pointer.symbol))

    def _write(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)
