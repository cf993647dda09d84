"""One bronze hour materialised the way an operator would from a shell:
``dagster asset materialize -m btc_platform.definitions``, configured only through the
environment (``DAGSTER_HOME``, ``BTC_*``), against the local exchange on a free port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from btc_platform.defs.constants import AGG_TRADE_IDS_COMPLETE, BRONZE_AGG_TRADES  # noqa: E402
from btc_platform.lakehouse import tables  # noqa: E402
from btc_platform.lakehouse.catalog import open_catalog  # noqa: E402
from btc_platform.settings import LakehouseSettings  # noqa: E402
from btc_platform_tests.support.dagster_backfill import IN_PROCESS  # noqa: E402
from btc_platform_tests.support.exchange_thread import serve_in_thread  # noqa: E402
from realtime.sim.exchange import ExchangeConfig  # noqa: E402
from realtime.sim.market_model import MarketModel, MarketParams  # noqa: E402

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).parents[2]
US_PER_HOUR = 3_600_000_000
MARKET_START_US = 1_767_225_600_000_000 + 22 * US_PER_HOUR  # 2026-01-01T22:00Z
HOUR = "2026-01-01-22:00"
HOUR_START_US, HOUR_END_US = MARKET_START_US, MARKET_START_US + US_PER_HOUR
COMMAND_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def exchange():
    source = MarketModel(MarketParams(seed=5, start_time_us=MARKET_START_US))
    with serve_in_thread(source, ExchangeConfig(speed=0, history_s=3600, weight_limit=None)) as ex:
        yield ex


def test_one_bronze_hour_from_the_dagster_cli(exchange, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    data_dir = tmp_path / "data"
    # No BTC_* from the caller's shell: only what this test sets (BTC_HISTORY_START stays
    # unset, so the partitions start on the default 2026-01-01).
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTC_")}
    env |= {
        "DAGSTER_HOME": str(home),
        "BTC_DATA_DIR": str(data_dir),
        "BTC_BINANCE_REST_URL": exchange.url,
        "BTC_BINANCE_ARCHIVE_URL": exchange.url,
    }
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster), "asset", "materialize",
        "--select", "/".join(BRONZE_AGG_TRADES.path),
        "--partition", HOUR,
        "-m", "btc_platform.definitions",
        "--config-json", json.dumps(IN_PROCESS),
    ]  # fmt: skip

    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    print(f"\n`dagster asset materialize` of {HOUR}: exit {result.returncode} in {seconds:.1f} s")
    assert result.returncode == 0, output

    # The lake: the hour's rows, one per aggregate trade id, without a hole.
    catalog = open_catalog(LakehouseSettings(data_dir=data_dir))
    rows = tables.scan_window(catalog, tables.BRONZE_AGG_TRADES, HOUR_START_US, HOUR_END_US)
    assert rows.num_rows > 1_000, rows.num_rows
    ids = np.sort(rows["agg_trade_id"].to_numpy())
    assert (np.diff(ids) == 1).all(), "agg_trade_id has duplicates or holes"
    times_us = pc.cast(rows["transact_time"], pa.int64()).to_numpy()
    assert times_us.min() >= HOUR_START_US
    assert times_us.max() < HOUR_END_US
    everything = tables.scan_window(catalog, tables.BRONZE_AGG_TRADES, 0, 2**62, ("agg_trade_id",))
    assert everything.num_rows == rows.num_rows  # the run wrote its hour and nothing else

    # The instance in DAGSTER_HOME: one successful run of the hour, its materialisation, and
    # the completeness proof passed over exactly the ids in the lake.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == HOUR

        materialization = instance.get_latest_materialization_event(BRONZE_AGG_TRADES)
        assert materialization is not None
        assert materialization.run_id == run.run_id
        metadata = materialization.asset_materialization.metadata
        assert metadata["rows"].value == rows.num_rows
        assert metadata["first_agg_trade_id"].value == int(ids[0])
        assert metadata["last_agg_trade_id"].value == int(ids[-1])

        check_events = instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        (evaluation,) = [event.dagster_event.event_specific_data for event in check_events]
        assert evaluation.asset_key == BRONZE_AGG_TRADES
        assert evaluation.check_name == AGG_TRADE_IDS_COMPLETE
        assert evaluation.passed, evaluation.description
        assert evaluation.metadata["rows"].value == rows.num_rows
        assert evaluation.metadata["missing_ids"].value == 0
        assert evaluation.metadata["duplicates"].value == 0
        assert evaluation.metadata["first_agg_trade_id"].value == int(ids[0])
        assert evaluation.metadata["last_agg_trade_id"].value == int(ids[-1])

    # And what the operator reads in the terminal says so too.
    (check_line,) = [
        line
        for line in output.splitlines()
        if "ASSET_CHECK_EVALUATION" in line and f"'{AGG_TRADE_IDS_COMPLETE}'" in line
    ]
    assert f"'{AGG_TRADE_IDS_COMPLETE}' on 'bronze/agg_trades' passed" in check_line, check_line
    # The CLI's own notice that `dg launch` supersedes it is not about our code; any other
    # warning is.
    warnings = [
        line
        for line in output.splitlines()
        if ("Warning" in line or "WARNING" in line) and "SupersessionWarning" not in line
    ]
    assert warnings == [], output
