"""The model store: bundles keyed by symbol and version, and each symbol's pointer file.

One implementation for a local directory and for S3 (pyarrow's filesystems), so the same
code runs on a laptop and in production::

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
from collections.abc import Mapping
from pathlib import Path

import pyarrow.fs as pafs

from btc_platform.ml.pointer import ModelPointer

BUNDLE_FILES = ("model.onnx", "manifest.json")
"""Written in this order: the manifest last."""
POINTER_FILE = "current.json"


class ModelStore:
    """Bundles and pointers under ``root`` of ``filesystem``."""

    def __init__(self, filesystem: pafs.FileSystem, root: str, uri: str) -> None:
        self.filesystem = filesystem
        self.root = root.rstrip("/")
        self.uri = uri.rstrip("/")

    @staticmethod
    def open(location: str, s3_options: Mapping[str, str] | None = None) -> ModelStore:
        """The store at ``location``: a local path, ``file://`` or ``s3://bucket/prefix``.

        ``s3_options`` are ``pyarrow.fs.S3FileSystem`` arguments (endpoint_override, region,
        access_key, secret_key).
        """
        if location.startswith("s3://"):
            filesystem: pafs.FileSystem = pafs.S3FileSystem(**dict(s3_options or {}))
            return ModelStore(filesystem, location.removeprefix("s3://"), location)
        path = Path(location.removeprefix("file://")).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return ModelStore(pafs.LocalFileSystem(), str(path), path.as_uri())

    def bundle_uri(self, symbol: str, version: str) -> str:
        return f"{self.uri}/{symbol.upper()}/{version}"

    def put_bundle(self, symbol: str, version: str, bundle_dir: Path) -> str:
        """Copy a local bundle directory into the store; return its URI. A version is written
        once: an existing one is refused (versions name artefacts, they are never reused)."""
        target = self._path(symbol, version)
        if self.filesystem.get_file_info(f"{target}/manifest.json").type != pafs.FileType.NotFound:
            raise FileExistsError(f"bundle {symbol}/{version} is already in {self.uri}")
        self.filesystem.create_dir(target, recursive=True)
        for name in BUNDLE_FILES:
            self._write(f"{target}/{name}", (bundle_dir / name).read_bytes())
        return self.bundle_uri(symbol, version)

    def fetch_bundle(self, symbol: str, version: str, local_dir: Path) -> Path:
        """Copy a stored bundle to ``local_dir/<version>`` (for the loader); return that."""
        destination = local_dir / version
        destination.mkdir(parents=True, exist_ok=True)
        source = self._path(symbol, version)
        for name in BUNDLE_FILES:
            with self.filesystem.open_input_stream(f"{source}/{name}") as stream:
                (destination / name).write_bytes(stream.read())
        return destination

    def versions(self, symbol: str) -> list[str]:
        """Stored versions of ``symbol``, oldest first (versions sort by training time)."""
        selector = pafs.FileSelector(f"{self.root}/{symbol.upper()}", allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def read_pointer(self, symbol: str) -> ModelPointer | None:
        path = f"{self.root}/{symbol.upper()}/{POINTER_FILE}"
        if self.filesystem.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.filesystem.open_input_stream(path) as stream:
            return ModelPointer.from_json(stream.read().decode())

    def write_pointer(self, pointer: ModelPointer) -> None:
        """Replace the symbol's pointer in one step (temporary file, then a move over it)."""
        directory = f"{self.root}/{pointer.symbol}"
        self.filesystem.create_dir(directory, recursive=True)
        temporary = f"{directory}/.{POINTER_FILE}.{uuid.uuid4().hex}"
        self._write(temporary, pointer.to_json().encode())
        self.filesystem.move(temporary, f"{directory}/{POINTER_FILE}")

    def _path(self, symbol: str, version: str) -> str:
        return f"{self.root}/{symbol.upper()}/{version}"

    def _write(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)
