"""The shared fixtures are real and private: their own Redis process, their own catalog."""

from __future__ import annotations

import pyarrow as pa
import pytest
import redis

from btc_platform_tests.support.redis_server import RedisServer


def test_redis_fixture_is_a_private_server(redis_server, redis_client):
    assert redis_server.port != 6379
    assert redis_client.set("ob:{BTCUSDT}", "1")
    assert redis_client.get("ob:{BTCUSDT}") == b"1"
    assert redis_client.config_get("port")["port"] == str(redis_server.port)
    assert redis_client.config_get("save")["save"] == ""


def test_redis_client_starts_empty(redis_client):
    assert redis_client.dbsize() == 0


def test_redis_server_stops_and_frees_its_port(tmp_path):
    server = RedisServer(tmp_path).start()
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=0.5)
    assert client.ping()
    process = server.process
    server.stop()
    assert process.poll() is not None
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_iceberg_fixture_round_trips_a_table(iceberg_catalog, tmp_path):
    iceberg_catalog.create_namespace("bronze")
    rows = pa.table(
        {
            "agg_trade_id": pa.array([1, 2, 3], pa.int64()),
            "price_e8": pa.array([10, 20, 30], pa.int64()),
        }
    )
    table = iceberg_catalog.create_table("bronze.smoke", schema=rows.schema)
    table.append(rows)
    assert (
        iceberg_catalog.load_table("bronze.smoke")
        .scan()
        .to_arrow()
        .sort_by("agg_trade_id")
        .equals(rows)
    )
    assert (tmp_path / "lake" / "catalog.sqlite").exists()
    assert any((tmp_path / "lake" / "warehouse").rglob("*.parquet"))
