"""The production configuration runs through the same assets: the warehouse (table data
and the catalog's metadata files) on an S3 server, the catalog SQL or Glue, S3 access
configured through dagster-aws's ``S3Resource``. The S3 and Glue server is moto in process.
"""

from __future__ import annotations

import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")
pytest.importorskip("moto", reason="the test extra is not installed")

from dagster_aws.s3 import S3Resource  # noqa: E402

from btc_platform.definitions import build_definitions  # noqa: E402
from btc_platform.defs.constants import BRONZE_AGG_TRADES, SILVER_TRADES  # noqa: E402
from btc_platform.defs.resources import BinanceResource, LakehouseResource  # noqa: E402
from btc_platform.lakehouse import tables  # noqa: E402
from btc_platform_tests.support.dagster_backfill import IN_PROCESS  # noqa: E402
from btc_platform_tests.support.exchange_thread import serve_in_thread  # noqa: E402
from btc_platform_tests.support.moto_server import KEY_ID, REGION, SECRET, moto_server  # noqa: E402
from realtime.sim.exchange import ExchangeConfig  # noqa: E402
from realtime.sim.market_model import MarketModel, MarketParams  # noqa: E402

pytestmark = pytest.mark.slow

BUCKET = "btc-lake"
MARKET_START_US = 1_767_225_600_000_000 + 22 * 3_600_000_000  # 2026-01-01T22:00Z
HOUR = "2026-01-01-22:00"


@pytest.fixture(scope="module")
def exchange():
    source = MarketModel(MarketParams(seed=5, start_time_us=MARKET_START_US))
    with serve_in_thread(source, ExchangeConfig(speed=0, history_s=3600, weight_limit=None)) as ex:
        yield ex


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        server.s3_client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.mark.parametrize("catalog_kind", ["sql", "glue"])
def test_one_partition_materialises_into_an_s3_warehouse(
    catalog_kind, exchange, s3, tmp_path, monkeypatch
):
    monkeypatch.setenv("BTC_ENV", "prod")  # as a deployment would set it
    warehouse = f"s3://{BUCKET}/{catalog_kind}"
    lakehouse = LakehouseResource(
        catalog_kind=catalog_kind,
        # The SQL catalog's database is local here; in production it is PostgreSQL.
        catalog_uri=f"sqlite:///{tmp_path / 'catalog.sqlite'}" if catalog_kind == "sql" else None,
        warehouse=warehouse,
        data_dir=str(tmp_path),
        s3=S3Resource(
            endpoint_url=s3.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        ),
    )
    binance = BinanceResource(
        rest_url=exchange.url, archive_url=exchange.url, data_dir=str(tmp_path)
    )
    defs = build_definitions(resources={"lakehouse": lakehouse, "binance": binance})
    job = defs.resolve_implicit_global_asset_job_def()

    result = job.execute_in_process(
        partition_key=HOUR, asset_selection=[BRONZE_AGG_TRADES], run_config=IN_PROCESS
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    rows = result.get_asset_materialization_events()[0].materialization.metadata["rows"].value
    assert rows > 10_000

    daily = job.execute_in_process(
        partition_key="2026-01-01", asset_selection=[SILVER_TRADES], run_config=IN_PROCESS
    )
    assert daily.success

    catalog = lakehouse.catalog()
    table = catalog.load_table(tables.BRONZE_AGG_TRADES.identifier)
    assert table.location().startswith(warehouse)
    stored = tables.scan_window(catalog, tables.SILVER_TRADES, 0, 2**62, ("agg_trade_id",))
    assert stored.num_rows == rows

    keys = [
        item["Key"]
        for page in s3.s3_client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]
    prefix = catalog_kind + "/"
    assert any(k.startswith(prefix) and k.endswith(".parquet") for k in keys)
    assert any(k.startswith(prefix) and k.endswith(".metadata.json") for k in keys)
