"""The code location as the UI sees it: ``dagster-webserver -w workspace.yaml`` in its own
process, asked over GraphQL what it loaded (assets, checks, partitions, jobs, schedules and
the gap sensor), and what it printed while loading.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

from btc_platform.defs.constants import (  # noqa: E402
    AGG_TRADE_IDS_COMPLETE,
    BARS_RECONCILE,
    BRONZE_AGG_TRADES,
    BRONZE_LIVE_BEST_BID_ASK,
    BRONZE_LIVE_DEPTH,
    BRONZE_LIVE_TRADES,
    EXPECTATIONS,
    GOLD_PREDICTION_QUALITY,
    GOLD_PREDICTIONS,
    GOLD_TRAINING_1S,
    LIVE_TRADE_IDS_CONTIGUOUS,
    MODEL_CANDIDATE,
    ONNX_MATCHES_TORCH,
    OWNERS,
    PRODUCTION_MODEL,
    PROMOTION_GATE,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
    SINGLE_ROW_LATENCY,
    TRAINING_LEAKAGE,
)
from btc_platform.defs.recovery.sensors import SENSOR_NAME  # noqa: E402
from btc_platform_tests.support.redis_server import free_port  # noqa: E402

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).parents[2]
LOCATION = "btc_platform"
LOAD_DEADLINE_S = 90.0
STOP_TIMEOUT_S = 20.0

BRONZE = "/".join(BRONZE_AGG_TRADES.path)
TRADES = "/".join(SILVER_TRADES.path)
BARS = "/".join(SILVER_BARS_1S.path)
FEATURES = "/".join(SILVER_FEATURES_1S.path)
GOLD = "/".join(GOLD_TRAINING_1S.path)
DAILY = (TRADES, BARS, FEATURES, GOLD)
CANDIDATE = "/".join(MODEL_CANDIDATE.path)
PRODUCTION = "/".join(PRODUCTION_MODEL.path)
LIVE_TRADES = "/".join(BRONZE_LIVE_TRADES.path)
LIVE_BRONZE = (
    LIVE_TRADES,
    *("/".join(k.path) for k in (BRONZE_LIVE_BEST_BID_ASK, BRONZE_LIVE_DEPTH)),
)
PREDICTIONS = "/".join(GOLD_PREDICTIONS.path)
QUALITY = "/".join(GOLD_PREDICTION_QUALITY.path)
LIVE_DAILY = (PREDICTIONS, QUALITY)
LAKE = (BRONZE, *DAILY, *LIVE_BRONZE, *LIVE_DAILY)

LOCATION_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
          ... on RepositoryLocation {
            repositories {
              name
              jobs { name }
              schedules { name cronSchedule pipelineName executionTimezone }
              sensors { name description }
            }
          }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSETS_QUERY = """
query {
  assetNodes {
    assetKey { path }
    groupName
    description
    owners { __typename ... on UserAssetOwner { email } ... on TeamAssetOwner { team } }
    kinds
    isPartitioned
    partitionDefinition { type name description fmt }
    backfillPolicy { policyType maxPartitionsPerRun description }
    dependencyKeys { path }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name assetKey { path } blocking description } }
      ... on Error { message }
    }
  }
}
"""


@dataclass
class Webserver:
    """A running ``dagster-webserver`` and the files its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    location: dict

    def output(self) -> str:
        return (
            f"--- stdout ---\n{self.stdout_path.read_text(errors='replace')}\n"
            f"--- stderr ---\n{self.stderr_path.read_text(errors='replace')}"
        )

    def graphql(self, query: str) -> dict:
        return _graphql(self.url, query)


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def _dagster_env(home: Path) -> dict[str, str]:
    """This environment without any ``BTC_*`` setting (the defaults are asserted below)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTC_")}
    env["DAGSTER_HOME"] = str(home)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the webserver and everything it started (the code server is in its session)."""
    group = process.pid  # start_new_session: the group id is the webserver's pid
    if process.poll() is None:
        os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)
    # The code server exits on its own once its parent is gone; make sure it did.
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)  # polling for the group to be empty, with a deadline
    os.killpg(group, signal.SIGKILL)


def _wait_until_loaded(url: str, process: subprocess.Popen[bytes], describe) -> dict:
    """Poll ``/server_info``, then the workspace, until the location is loaded (or fail)."""
    deadline = time.monotonic() + LOAD_DEADLINE_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}\n{describe()}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                assert response.status == 200
            data = _graphql(url, LOCATION_QUERY)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last = repr(error)
            time.sleep(0.5)  # polling for readiness, with a deadline
            continue
        workspace = data["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
        assert set(entries) == {LOCATION}, entries
        entry = entries[LOCATION]
        last = json.dumps(entry)[:2000]
        loaded = entry["locationOrLoadError"]
        if entry["loadStatus"] == "LOADED" and loaded is not None:
            if loaded["__typename"] == "PythonError":
                pytest.fail(
                    f"the code location failed to load: {loaded['message']}\n"
                    f"{''.join(loaded['stack'])}\n{describe()}"
                )
            assert loaded["__typename"] == "RepositoryLocation", loaded
            return loaded
        time.sleep(0.5)  # polling for readiness, with a deadline
    pytest.fail(f"{LOCATION} not loaded after {LOAD_DEADLINE_S} s (last: {last})\n{describe()}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout_path, stderr_path = home / "webserver.stdout", home / "webserver.stderr"
    binary = Path(sys.executable).with_name("dagster-webserver")
    started = time.monotonic()
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT,
            env=_dagster_env(home),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        server = Webserver(url, process, stdout_path, stderr_path, location={})
        server.location = _wait_until_loaded(url, process, server.output)
        print(f"\n{LOCATION} loaded in dagster-webserver after {time.monotonic() - started:.1f} s")
        yield server
    finally:
        _stop(process)
    assert process.returncode is not None


@pytest.fixture(scope="module")
def asset_nodes(webserver: Webserver) -> dict[str, dict]:
    nodes = webserver.graphql(ASSETS_QUERY)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def test_exactly_the_lakehouse_and_model_assets_are_loaded(asset_nodes):
    assert sorted(asset_nodes) == sorted([*LAKE, CANDIDATE, PRODUCTION])


def test_every_asset_is_described_grouped_owned_and_kinded(asset_nodes):
    teams = {owner.removeprefix("team:") for owner in OWNERS}
    for key, node in asset_nodes.items():
        assert (node["description"] or "").strip(), key
        assert node["groupName"] == key.split("/")[0], key
        owners = node["owners"]
        assert owners, key
        assert {o["__typename"] for o in owners} == {"TeamAssetOwner"}, (key, owners)
        assert {o["team"] for o in owners} == teams, (key, owners)
        assert all(kind for kind in node["kinds"]), (key, node["kinds"])
        if key in LAKE:
            assert "iceberg" in node["kinds"], (key, node["kinds"])
    assert "onnx" in asset_nodes[CANDIDATE]["kinds"]
    assert "redis" in asset_nodes[PRODUCTION]["kinds"]


def test_bronze_is_hourly_and_the_layers_above_daily_from_the_default_start(asset_nodes):
    for key in (BRONZE, *LIVE_BRONZE):
        bronze = asset_nodes[key]
        assert bronze["isPartitioned"], key
        hourly = bronze["partitionDefinition"]
        assert hourly["type"] == "TIME_WINDOW", (key, hourly)
        assert "Hourly" in hourly["description"], (key, hourly)
        assert "2026-01-01" in hourly["description"], (key, hourly)  # BTC_HISTORY_START unset
        assert hourly["fmt"] == "%Y-%m-%d-%H:%M", (key, hourly)
    for key in (*DAILY, *LIVE_DAILY):
        node = asset_nodes[key]
        assert node["isPartitioned"], key
        daily = node["partitionDefinition"]
        assert daily["type"] == "TIME_WINDOW", (key, daily)
        assert "Daily" in daily["description"], (key, daily)
        assert "2026-01-01" in daily["description"], (key, daily)
        assert daily["fmt"] == "%Y-%m-%d", (key, daily)


def test_backfills_batch_a_day_of_hours_and_a_week_of_days(asset_nodes):
    expected = {
        BRONZE: 24,
        **dict.fromkeys(DAILY, 7),
        **dict.fromkeys(LIVE_BRONZE, 24),
        **dict.fromkeys(LIVE_DAILY, 7),
    }
    for key, per_run in expected.items():
        policy = asset_nodes[key]["backfillPolicy"]
        assert policy is not None, key
        assert policy["policyType"] == "MULTI_RUN", (key, policy)
        assert policy["maxPartitionsPerRun"] == per_run, (key, policy)


def test_dependencies_follow_the_layers(asset_nodes):
    expected = {
        BRONZE: [],
        TRADES: [BRONZE],
        BARS: [TRADES],
        FEATURES: [BARS],
        GOLD: [FEATURES],
        CANDIDATE: [GOLD],
        PRODUCTION: [CANDIDATE],
        **{key: [] for key in LIVE_BRONZE},
        PREDICTIONS: [],
        QUALITY: sorted([GOLD, PREDICTIONS]),
    }
    actual = {
        key: sorted("/".join(dep["path"]) for dep in node["dependencyKeys"])
        for key, node in asset_nodes.items()
    }
    assert actual == expected


def test_every_check_is_present_and_blocking(asset_nodes):
    expected = {
        (BRONZE, AGG_TRADE_IDS_COMPLETE),
        *((key, EXPECTATIONS) for key in DAILY),
        (BARS, BARS_RECONCILE),
        (GOLD, TRAINING_LEAKAGE),
        (LIVE_TRADES, LIVE_TRADE_IDS_CONTIGUOUS),
        (CANDIDATE, ONNX_MATCHES_TORCH),
        (CANDIDATE, SINGLE_ROW_LATENCY),
        (CANDIDATE, PROMOTION_GATE),
    }
    found = set()
    for key, node in asset_nodes.items():
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", (key, checks)
        for check in checks["checks"]:
            assert "/".join(check["assetKey"]["path"]) == key, check
            assert check["blocking"] is True, (key, check)
            assert check["description"], (key, check)
            found.add((key, check["name"]))
    assert found == expected


def test_jobs_schedules_and_the_gap_sensor_are_loaded(webserver):
    (repository,) = webserver.location["repositories"]
    jobs = {job["name"] for job in repository["jobs"]}
    assert {
        "bronze_hourly",
        "lakehouse_daily",
        "train_and_promote",
        "incremental_update",
        "rollback_model",
        "live_hourly",
        "live_daily",
    } <= jobs, jobs
    schedules = {s["pipelineName"]: s for s in repository["schedules"]}
    assert sorted(schedules) == [
        "bronze_hourly",
        "incremental_update",
        "lakehouse_daily",
        "live_daily",
        "live_hourly",
        "train_and_promote",
    ], schedules
    # Five past every hour for bronze; 00:20 UTC for yesterday's silver and gold; the model
    # retrained at 01:00 and updated at half past every hour.
    assert schedules["bronze_hourly"]["cronSchedule"] == "5 * * * *"
    assert schedules["lakehouse_daily"]["cronSchedule"] == "20 0 * * *"
    assert schedules["train_and_promote"]["cronSchedule"] == "0 1 * * *"
    assert schedules["incremental_update"]["cronSchedule"] == "30 * * * *"
    # The live capture: a quarter past each hour (its segments have closed), and each day
    # after lakehouse_daily has written the labels its predictions are scored against.
    assert schedules["live_hourly"]["cronSchedule"] == "15 * * * *"
    assert schedules["live_daily"]["cronSchedule"] == "40 0 * * *"
    assert {s["executionTimezone"] for s in schedules.values()} == {"UTC"}
    sensors = {sensor["name"]: sensor for sensor in repository["sensors"]}
    assert list(sensors) == [SENSOR_NAME]
    assert sensors[SENSOR_NAME]["description"]


# Lines that are not about our code: the CLI's notice that `dg` supersedes it, and notes on
# telemetry (disabled in this DAGSTER_HOME).
FOREIGN_WARNINGS = ("SupersessionWarning", "telemetry")


def test_loading_the_code_location_prints_no_warning(webserver, asset_nodes):
    # asset_nodes first: the location has been loaded and asked about its whole graph.
    # Dagster logs Python warnings raised while loading (in the code server too) through its
    # own logger, which writes to stdout, as "- dagster - WARNING - <file>: BetaWarning: ...";
    # the file named is often Dagster's own (the decorator), not ours, so every warning line
    # counts, not only those naming btc_platform.
    lines = [
        *webserver.stdout_path.read_text(errors="replace").splitlines(),
        *webserver.stderr_path.read_text(errors="replace").splitlines(),
    ]
    flagged = [line for line in lines if "Warning" in line or "WARNING" in line]
    ignored = [line for line in flagged if any(foreign in line for foreign in FOREIGN_WARNINGS)]
    warnings = [line for line in flagged if line not in ignored]
    print(f"\nwarning lines ignored: {ignored or 'none'}; counted: {warnings or 'none'}")
    assert warnings == [], webserver.output()
