"""Redis as deployed, for real: the manifests' start script and probe, a password and a
TLS-only port with certificates from deploy/redis-tls.sh, and the service's and the lake's
clients connecting with nothing but their settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
import yaml

from btc_platform_tests.support.redis_server import RedisServer, free_port
from realtime.service.runner import redis_client
from realtime.service.settings import RealtimeSettings

ROOT = Path(__file__).resolve().parents[2]
TLS_SCRIPT = ROOT / "deploy" / "redis-tls.sh"
K8S_REDIS = ROOT / "deploy" / "k8s" / "redis.yaml"
PASSWORD = "0123456789abcdef0123456789abcdef"
START_TIMEOUT_S = 60.0
"""Generous: reaching it means the server never came up, not that the machine was slow."""


def _tls_unavailable() -> str | None:
    """Why this machine cannot run a TLS Redis, or None."""
    for tool in ("openssl", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    # A build without TLS rejects the directive; one with it only finds nothing to listen on.
    probe = subprocess.run(
        ["redis-server", "--port", "0", "--tls-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "tls-port" in probe.stdout + probe.stderr and "Bad directive" in probe.stdout + probe.stderr:
        return "this redis-server was built without TLS (BUILD_TLS=yes)"
    return None


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _tls_unavailable()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("redis") / "tls"
    subprocess.run(["sh", str(TLS_SCRIPT), str(directory)], check=True, capture_output=True)
    return directory


@pytest.fixture(scope="module")
def secure_redis(tls_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = tmp_path_factory.mktemp("secure-redis")
    with RedisServer(directory, password=PASSWORD, tls_dir=tls_dir) as server:
        yield server


@pytest.fixture
def prod_environment(monkeypatch, secure_redis: RedisServer, tls_dir: Path) -> None:
    """The environment a deployment gives the service and Dagster (deploy/k8s/settings.yaml)."""
    for name in list(os.environ):
        if name.startswith("BTC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_REDIS_URL", secure_redis.url)
    monkeypatch.setenv("BTC_REDIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("BTC_REDIS_CA_FILE", str(tls_dir / "ca.crt"))


async def test_the_service_client_connects_with_the_settings_password_and_ca(prod_environment):
    settings = RealtimeSettings()
    assert settings.redis_url.startswith("rediss://")
    client = redis_client(settings)
    try:
        await client.set("deploy:probe", b"over tls")
        assert await client.get("deploy:probe") == b"over tls"
    finally:
        await client.aclose()


def test_the_lake_client_connects_with_the_settings_password_and_ca(prod_environment):
    pytest.importorskip("dagster", reason="the batch extra is not installed")
    from btc_platform.defs.resources import RedisResource

    client = RedisResource().client()
    try:
        client.set("deploy:probe", b"lake")
        assert client.get("deploy:probe") == b"lake"
    finally:
        client.close()


def test_btc_models_copies_the_production_version_with_the_password_and_ca(prod_environment):
    pytest.importorskip("dagster", reason="the batch extra is not installed")
    from btc_platform.ml.production_key import ProductionKey
    from btc_platform.settings import LakehouseSettings
    from realtime.inference.pointer import ModelPointer

    settings = LakehouseSettings()
    pointer = ModelPointer(settings.symbol, production="v-tls")
    with ProductionKey.connect(settings.redis_connection()) as production_key:
        copied = production_key.publish(pointer)
        assert copied.synced, copied.problem
        assert production_key.read(settings.symbol) == "v-tls"


async def test_a_wrong_password_is_an_authentication_error_naming_no_password(
    prod_environment, monkeypatch
):
    monkeypatch.setenv("BTC_REDIS_PASSWORD", "not-the-password")
    client = redis_client(RealtimeSettings())
    try:
        with pytest.raises(redis.AuthenticationError) as raised:
            await client.ping()
    finally:
        await client.aclose()
    assert "not-the-password" not in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_no_password_is_an_authentication_error_for_the_lake(prod_environment, monkeypatch):
    pytest.importorskip("dagster", reason="the batch extra is not installed")
    from btc_platform.defs.resources import RedisResource

    monkeypatch.delenv("BTC_REDIS_PASSWORD")
    client = RedisResource().client()
    try:
        with pytest.raises(redis.AuthenticationError, match=r"(?i)authenticat"):
            client.ping()
    finally:
        client.close()


async def test_a_server_signed_by_another_ca_is_refused(prod_environment, monkeypatch):
    monkeypatch.delenv("BTC_REDIS_CA_FILE")  # the system's trust store knows no such CA
    client = redis_client(RealtimeSettings())
    try:
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            await client.ping()
    finally:
        await client.aclose()


async def test_a_plain_client_on_the_tls_port_fails_instead_of_talking(prod_environment):
    # Local settings would allow redis://; the server has no plain-text port to answer it.
    url = RealtimeSettings().redis_url.replace("rediss://", "redis://")
    client = aioredis.Redis.from_url(
        url, password=PASSWORD, socket_timeout=10.0, socket_connect_timeout=10.0
    )
    try:
        with pytest.raises(redis.ConnectionError):
            await client.ping()
    finally:
        await client.aclose()


# The manifests' own start script and readiness probe (compose runs the same, per
# test_deploy_files), run here with their container paths pointed into tmp_path.


def _k8s_redis_container() -> dict:
    statefulset = next(yaml.safe_load_all(K8S_REDIS.read_text()))
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return container


def _in_tmp(command: str, tls_dir: Path, run_dir: Path, port: int) -> str:
    return (
        command.replace("/tls/", f"{tls_dir}/")
        .replace("/run/redis/", f"{run_dir}/")
        .replace("--tls-port 6379", f"--tls-port {port}")
    )


def _probe(command: str, password: str) -> int:
    environment = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": password}
    return subprocess.run(
        ["sh", "-c", command], env=environment, capture_output=True, timeout=30, check=False
    ).returncode


@pytest.fixture
def manifest_redis(tls_dir: Path, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    """redis-server started by the manifest's script: its port, its probe command and the
    directory standing for its in-memory ``/run/redis``."""
    container = _k8s_redis_container()
    port, run_dir, data_dir = free_port(), tmp_path / "run", tmp_path / "data"
    run_dir.mkdir()
    data_dir.mkdir()
    script = _in_tmp(container["args"][2], tls_dir, run_dir, port)
    script += f" --bind 127.0.0.1 --dir {data_dir} --logfile {tmp_path / 'redis.log'}"
    probe = _in_tmp(container["readinessProbe"]["exec"]["command"][2], tls_dir, run_dir, port)
    probe = probe.replace("redis-cli ", f"redis-cli -p {port} ")
    environment = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": PASSWORD}
    process = subprocess.Popen(["sh", "-c", script], env=environment)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _probe(probe, PASSWORD) != 0:  # the readiness probe decides, as in the cluster
            assert process.poll() is None, (tmp_path / "redis.log").read_text()
            assert time.monotonic() < deadline, "the manifest's Redis never became ready"
            time.sleep(0.05)
        yield port, probe, run_dir
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_manifest_script_starts_redis_with_auth_and_tls_only(manifest_redis, tls_dir):
    port, probe, run_dir = manifest_redis
    assert _probe(probe, "wrong") != 0, "the probe must fail on a wrong password"
    # The password's only copy on disk: in memory, readable by Redis' user alone.
    assert (run_dir / "auth.conf").stat().st_mode & 0o777 == 0o600
    assert PASSWORD in (run_dir / "auth.conf").read_text()
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(tls_dir / "ca.crt"),
        socket_timeout=10.0,
    )
    try:
        assert client.ping()
        assert client.config_get("port") == {"port": "0"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(
            host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(tls_dir / "ca.crt")
        ).ping()


def test_the_manifest_script_refuses_a_password_it_cannot_quote(tmp_path):
    script = _k8s_redis_container()["args"][2]
    for password in ("", "two words", 'quote"d'):
        result = subprocess.run(
            ["sh", "-c", script],
            env={"PATH": os.environ["PATH"], "REDIS_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 1, password
        assert "REDIS_PASSWORD: letters and digits only" in result.stderr
