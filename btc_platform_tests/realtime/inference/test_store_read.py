"""The store's read side and the pointer's JSON, as the live service uses them: a real
directory (and a real S3 server), files laid out as the batch side writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime.inference.errors import BundleMissing, BundleRejected, PointerInvalid
from realtime.inference.pointer import DOCUMENT, ModelPointer, Stage
from realtime.inference.store import BUNDLE_FILES, POINTER_FILE, BundleStore

SYMBOL = "BTCUSDT"
POINTER = ModelPointer(
    SYMBOL,
    canary="v3",
    production="v2",
    previous=("v1",),
    updated_at="2026-01-02T00:00:00.000000Z",
    history=({"at": "2026-01-02T00:00:00.000000Z", "version": "v2", "stage": "production"},),
)


def put_version(root: Path, version: str, *, files: tuple[str, ...] = BUNDLE_FILES) -> None:
    directory = root / SYMBOL / version
    directory.mkdir(parents=True)
    for name in files:
        (directory / name).write_bytes(f"{name} of {version}".encode())


def put_pointer(root: Path, text: str | bytes) -> None:
    (root / SYMBOL).mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    (root / SYMBOL / POINTER_FILE).write_bytes(data)


def test_a_local_store_lists_fetches_and_reads_the_pointer(tmp_path):
    root = tmp_path / "models"
    for version in ("20260102T000000Z-bbbbbbbb", "20260101T000000Z-aaaaaaaa"):
        put_version(root, version)
    put_pointer(root, POINTER.to_json())
    store = BundleStore.open(f"file://{root}")

    assert store.versions("btcusdt") == ["20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"]
    assert store.bundle_uri(SYMBOL, "v9") == f"{root.as_uri()}/BTCUSDT/v9"
    assert store.read_pointer(SYMBOL) == POINTER
    fetched = store.fetch_bundle(SYMBOL, "20260101T000000Z-aaaaaaaa", tmp_path / "cache")
    assert fetched == tmp_path / "cache" / "20260101T000000Z-aaaaaaaa"
    assert (fetched / "model.onnx").read_bytes() == b"model.onnx of 20260101T000000Z-aaaaaaaa"


def test_an_empty_store_has_no_versions_and_no_pointer_and_is_not_created(tmp_path):
    store = BundleStore.open(str(tmp_path / "nowhere"))
    assert store.versions(SYMBOL) == []
    assert store.read_pointer(SYMBOL) is None
    assert not (tmp_path / "nowhere").exists()  # a reader writes nothing


@pytest.mark.parametrize(
    ("files", "missing"),
    [((), "model.onnx"), (("model.onnx",), "manifest.json"), (("manifest.json",), "model.onnx")],
)
def test_fetching_an_incomplete_bundle_raises_bundle_missing(tmp_path, files, missing):
    root = tmp_path / "models"
    if files:
        put_version(root, "v1", files=files)
    store = BundleStore.open(str(root))
    with pytest.raises(BundleMissing) as raised:
        store.fetch_bundle(SYMBOL, "v1", tmp_path / "cache")
    assert raised.value.name == missing
    assert raised.value.uri == f"{root.as_uri()}/BTCUSDT/v1"
    assert isinstance(raised.value, BundleRejected)


POINTER_DEFECTS = [
    ("not JSON", b"production: v2", DOCUMENT),
    ("truncated", b'{"symbol": "BTCUSDT", "produ', DOCUMENT),
    ("empty", b"", DOCUMENT),
    ("not UTF-8", b'{"symbol": "\xff"}', DOCUMENT),
    ("NaN", b'{"symbol": "BTCUSDT", "updated_at": NaN}', DOCUMENT),
    ("a list", b'["BTCUSDT", "v2"]', DOCUMENT),
    ("no symbol", b'{"production": "v2"}', "symbol"),
    ("symbol a number", b'{"symbol": 1}', "symbol"),
    ("another symbol's", b'{"symbol": "ETHUSDT", "production": "v2"}', "symbol"),
    ("production a number", b'{"symbol": "BTCUSDT", "production": 2}', "production"),
    ("production empty", b'{"symbol": "BTCUSDT", "production": ""}', "production"),
    ("production a path", b'{"symbol": "BTCUSDT", "production": "../../etc"}', "production"),
    ("canary with a slash", b'{"symbol": "BTCUSDT", "canary": "a/b"}', "canary"),
    ("previous not a list", b'{"symbol": "BTCUSDT", "previous": "v1"}', "previous"),
    ("previous of numbers", b'{"symbol": "BTCUSDT", "previous": ["v1", 2]}', "previous[1]"),
    ("history of strings", b'{"symbol": "BTCUSDT", "history": ["promoted"]}', "history[0]"),
    ("updated_at a number", b'{"symbol": "BTCUSDT", "updated_at": 0}', "updated_at"),
]


@pytest.mark.parametrize(
    ("text", "field"),
    [pytest.param(text, field, id=name) for name, text, field in POINTER_DEFECTS],
)
def test_a_malformed_pointer_raises_pointer_invalid_naming_file_and_field(tmp_path, text, field):
    root = tmp_path / "models"
    put_pointer(root, text)
    with pytest.raises(PointerInvalid) as raised:
        BundleStore.open(str(root)).read_pointer(SYMBOL)
    assert raised.value.field == field
    assert raised.value.source == f"{root.as_uri()}/BTCUSDT/current.json"
    assert isinstance(raised.value, BundleRejected)


def test_a_pointer_keeps_only_its_fields_and_tolerates_newer_ones():
    text = json.dumps({"symbol": SYMBOL, "production": "v2", "written_by": "a newer batch side"})
    pointer = ModelPointer.from_json(text)
    assert pointer == ModelPointer(SYMBOL, production="v2")
    assert pointer.stage_of("v2") is Stage.PRODUCTION
    assert ModelPointer.from_json(POINTER.to_json().encode()) == POINTER


def test_what_the_batch_side_writes_the_live_side_reads(tmp_path):
    """One layout, two halves: ``ModelStore`` is a ``BundleStore`` with the writes."""
    from btc_platform.ml import pointer as batch_pointer
    from btc_platform.ml.store import ModelStore

    assert batch_pointer.ModelPointer is ModelPointer
    assert batch_pointer.Stage is Stage
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in BUNDLE_FILES:
        (bundle / name).write_bytes(name.encode())
    writer = ModelStore.open(str(tmp_path / "models"))
    assert isinstance(writer, ModelStore)
    writer.put_bundle(SYMBOL, "v2", bundle)
    writer.write_pointer(POINTER)

    reader = BundleStore.open(str(tmp_path / "models"))
    assert reader.read_pointer(SYMBOL) == POINTER
    assert reader.versions(SYMBOL) == ["v2"]
    fetched = reader.fetch_bundle(SYMBOL, "v2", tmp_path / "cache")
    assert (fetched / "manifest.json").read_bytes() == b"manifest.json"


def test_the_read_side_works_on_s3(tmp_path):
    """The production store: listing, a missing bundle and the pointer over S3 (moto)."""
    pytest.importorskip("moto", reason="the test extra is not installed")
    from btc_platform_tests.support.moto_server import KEY_ID, REGION, SECRET, moto_server

    with moto_server() as server:
        s3 = server.s3_client()
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="prod/BTCUSDT/v1/model.onnx", Body=b"onnx bytes")
        s3.put_object(Bucket="models", Key="prod/BTCUSDT/v1/manifest.json", Body=b"{}")
        s3.put_object(Bucket="models", Key="prod/BTCUSDT/v2/model.onnx", Body=b"no manifest")
        s3.put_object(Bucket="models", Key="prod/BTCUSDT/current.json", Body=POINTER.to_json())
        options = {
            "endpoint_override": server.endpoint,
            "region": REGION,
            "access_key": KEY_ID,
            "secret_key": SECRET,
        }
        store = BundleStore.open("s3://models/prod", options)

        assert store.read_pointer(SYMBOL) == POINTER
        assert store.versions(SYMBOL) == ["v1", "v2"]
        fetched = store.fetch_bundle(SYMBOL, "v1", tmp_path / "cache")
        assert (fetched / "model.onnx").read_bytes() == b"onnx bytes"
        with pytest.raises(BundleMissing) as half_written:
            store.fetch_bundle(SYMBOL, "v2", tmp_path / "cache")
        assert half_written.value.name == "manifest.json"
        with pytest.raises(BundleMissing) as absent:
            store.fetch_bundle(SYMBOL, "v3", tmp_path / "cache")
        assert absent.value.name == "model.onnx"
        s3.put_object(Bucket="models", Key="prod/BTCUSDT/current.json", Body=b"{oops")
        with pytest.raises(PointerInvalid) as garbage:
            store.read_pointer(SYMBOL)
        assert garbage.value.source == "s3://models/prod/BTCUSDT/current.json"
