"""The deployment files say what the code does: parsed here, without Docker or a cluster.

Each check is aimed at a mistake that would otherwise show only in production: a ``BTC_*``
name no settings class has (pydantic-settings ignores it silently), a command or flag that
is not installed, a probe on a path the service does not serve, a committed secret, a root
container, a capture directory the lake cannot see.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from btc_platform.settings import LakehouseSettings  # noqa: E402
from realtime.service import settings as realtime_settings  # noqa: E402
from realtime.service.settings import RealtimeSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_DIR = ROOT / "deploy" / "compose"
LOCAL_ENV = COMPOSE_DIR / "local.env.example"
PROD_ENV = COMPOSE_DIR / "prod.env.example"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DAGSTER_INSTANCE = ROOT / "deploy" / "dagster" / "dagster.yaml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DOCS = ROOT / "docs" / "deployment.md"
REDIS_TLS_SCRIPT = DEPLOY / "redis-tls.sh"

DAGSTER_BINARIES = {"dagster-webserver", "dagster-daemon"}
SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN)")
BTC_NAME = re.compile(r"\bBTC_[A-Z0-9_]*[A-Z0-9]\b")
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
OUR_IMAGE_PREFIX = "btc-platform"
WEBSERVER = "dagster-webserver"
DAEMON = "dagster-daemon"
SHELL_SECRETS = {"BTC_BINANCE_API_KEY": "k", "DAGSTER_PG_PASSWORD": "p", "BTC_REDIS_PASSWORD": "r"}
"""What an operator exports before ``docker compose up`` (compose refuses to start without)."""

# Files, parsed once.


def _settings_names() -> set[str]:
    names: set[str] = set()
    for settings in (RealtimeSettings, LakehouseSettings):
        prefix = settings.model_config["env_prefix"]
        names |= {f"{prefix}{field}".upper() for field in settings.model_fields}
    return names


SETTINGS_NAMES = _settings_names()
METRICS_PORT = RealtimeSettings.model_fields["metrics_port"].default


def _served_paths() -> set[str]:
    source = (ROOT / "realtime" / "service" / "http.py").read_text()
    return set(re.findall(r"web\.get\(\"(/[^\"]*)\"", source))


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for name in _kustomization()["resources"]:
        objects += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return objects


def _k8s(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in deploy/k8s: {len(found)} found"
    return found[0]


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for item in _k8s_objects():
        if item["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield item["metadata"]["name"], item["spec"]["template"]["spec"]


def _container(workload: str) -> dict[str, Any]:
    kind = "StatefulSet" if workload in {"redis", "postgres"} else "Deployment"
    (container,) = _k8s(kind, workload)["spec"]["template"]["spec"]["containers"]
    return container


def _configmap(name: str) -> dict[str, str]:
    return _k8s("ConfigMap", name)["data"]


def _k8s_environment(container: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a container gets: its ConfigMaps' keys and its own env entries."""
    environment: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        environment |= _configmap(source["configMapRef"]["name"])
    for entry in container.get("env", []):
        environment[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return environment


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def _dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (the image's defaults)."""
    environment: dict[str, str] = {}
    for instruction, arguments in _dockerfile_stages()[-1]:
        if instruction == "ENV":
            environment |= dict(re.findall(r"(\w+)=(\S+)", arguments))
    return environment


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation, for the forms the compose file uses."""
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        got = env.get(name, "")
        if operator == ":-":
            return got or argument
        if operator == ":?" and not got:
            raise LookupError(f"compose refuses to start: {name}: {argument}")
        return got

    return INTERPOLATION.sub(substitute, value)


def _service_environment(service: str, env: Mapping[str, str]) -> dict[str, str]:
    """What a compose service's container gets with ``env`` as the shell and env file."""
    resolved = {}
    for name, value in (_compose()["services"][service].get("environment") or {}).items():
        if value is None:  # `NAME:`: passed from the environment when set there
            if name in env:
                resolved[name] = env[name]
        else:
            resolved[name] = _interpolate(str(value), env)
    return resolved


def _our_compose_services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    return {name: s for name, s in services.items() if s["image"].startswith(OUR_IMAGE_PREFIX)}


def _our_k8s_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload, spec in _pod_specs():
        for container in spec["containers"]:
            if container["image"].startswith(OUR_IMAGE_PREFIX):
                yield workload, container


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No BTC_* of the developer's shell leaks into the settings built here."""
    import os

    for name in list(os.environ):
        if name.startswith("BTC_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _settings_from(
    environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[RealtimeSettings, LakehouseSettings]:
    for name, value in environment.items():
        if name.startswith("BTC_"):
            monkeypatch.setenv(name, value)
    return RealtimeSettings(), LakehouseSettings()


# Settings.


def test_every_btc_variable_named_is_a_setting():
    named: dict[str, set[str]] = {}

    def note(source: str, names: Any) -> None:
        for name in names:
            if name.startswith("BTC_"):
                named.setdefault(name, set()).add(source)

    compose_text = COMPOSE.read_text()
    note("docker-compose.yml", BTC_NAME.findall(compose_text))
    for path in (LOCAL_ENV, PROD_ENV):
        note(path.name, BTC_NAME.findall(path.read_text()))
    for path in sorted(K8S.glob("*.yaml")):
        note(path.name, BTC_NAME.findall(path.read_text()))
    note("Dockerfile", BTC_NAME.findall(DOCKERFILE.read_text()))
    note("docs/deployment.md", BTC_NAME.findall(DOCS.read_text()))

    assert len(named) >= 10, "the files name the settings they set"
    unknown = {name: sorted(where) for name, where in named.items() if name not in SETTINGS_NAMES}
    assert not unknown, f"not fields of RealtimeSettings or LakehouseSettings: {unknown}"


def test_k8s_settings_are_valid_production_settings(clean_environment):
    settings = _configmap("btc-settings")
    realtime, lake = _settings_from(settings, clean_environment)

    assert realtime.env == "prod"
    assert lake.env == "prod"
    lake.check_lake()  # a production lake must be named: catalog kind and warehouse
    assert lake.warehouse.startswith("s3://")
    assert realtime.model_store_location == lake.model_store_location
    assert realtime.model_store_location.startswith("s3://")
    # No URL overrides: Binance's own endpoints.
    assert realtime.rest_url == realtime_settings.BINANCE_REST_URL
    assert realtime.stream_url == realtime_settings.BINANCE_STREAM_URL
    assert lake.archive_url == realtime_settings.BINANCE_ARCHIVE_URL
    assert realtime.metrics_host == "0.0.0.0"
    assert lake.weight_limit_1m <= LakehouseSettings.model_fields["weight_limit_1m"].default


def test_compose_local_stack_points_at_the_local_exchange(clean_environment):
    env = _env_file(LOCAL_ENV) | SHELL_SECRETS
    assert "local" in env["COMPOSE_PROFILES"].split(",")
    exchange = _compose()["services"]["exchange"]
    assert "local" in exchange["profiles"]
    port = exchange["command"][exchange["command"].index("--port") + 1]

    realtime, _ = _settings_from(_service_environment("realtime", env), clean_environment)
    assert realtime.rest_url == f"http://exchange:{port}"
    assert realtime.stream_url == f"ws://exchange:{port}"
    assert realtime.api_key == "k"
    assert realtime.redis_connection().tls
    for name in (WEBSERVER, DAEMON):
        clean = _service_environment(name, env)
        _, lake = _settings_from(clean, clean_environment)
        assert lake.rest_url == f"http://exchange:{port}"
        assert lake.archive_url == f"http://exchange:{port}"
        lake.check_lake()


def test_compose_production_env_file_names_a_lake(clean_environment):
    env = _env_file(PROD_ENV) | SHELL_SECRETS
    realtime, _ = _settings_from(_service_environment("realtime", env), clean_environment)
    assert realtime.rest_url == realtime_settings.BINANCE_REST_URL
    assert realtime.stream_url == realtime_settings.BINANCE_STREAM_URL
    _, lake = _settings_from(_service_environment(DAEMON, env), clean_environment)
    lake.check_lake()
    assert lake.warehouse.startswith("s3://")


def test_compose_refuses_to_start_without_the_api_key_or_the_environment():
    for name in ("BTC_BINANCE_API_KEY", "BTC_REDIS_PASSWORD"):
        without = {"BTC_ENV": "local"} | SHELL_SECRETS
        del without[name]
        with pytest.raises(LookupError, match=name):
            _service_environment("realtime", without)
    with pytest.raises(LookupError, match="BTC_ENV"):
        _service_environment("realtime", SHELL_SECRETS)
    with pytest.raises(LookupError, match="BTC_REDIS_PASSWORD"):
        _service_environment("redis", {})


# Commands.


def _check_btc_command(argv: list[str]) -> None:
    from realtime import cli as realtime_cli
    from realtime.sim import cli as sim_cli

    parsers = {"btc-realtime": realtime_cli._parser, "btc-sim": sim_cli._parser}
    if argv[0] in parsers:
        try:
            parsers[argv[0]]().parse_args(argv[1:])
        except SystemExit as exit_:
            pytest.fail(f"{argv}: refused by its argument parser (exit {exit_.code})")


def _check_dagster_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    click = pytest.importorskip("click")
    pytest.importorskip("dagster_webserver")
    (entry_point,) = metadata.entry_points(group="console_scripts", name=argv[0])
    # Dagster's scripts are `main` functions around the module's click command `cli`.
    command, arguments = import_module(entry_point.module).cli, argv[1:]
    assert isinstance(command, click.Command), entry_point
    while isinstance(command, click.Group) and arguments and arguments[0] in command.commands:
        command, arguments = command.commands[arguments[0]], arguments[1:]
    monkeypatch.chdir(ROOT)  # the image's WORKDIR holds workspace.yaml, as the root does
    try:
        command.make_context(argv[0], list(arguments))
    except click.UsageError as error:
        pytest.fail(f"{argv}: {error}")


def _commands() -> list[tuple[str, list[str]]]:
    commands = []
    for name, service in _our_compose_services().items():
        commands.append((f"compose {name}", service["command"]))
    for workload, container in _our_k8s_containers():
        commands.append((f"k8s {workload}", container["args"]))
        probe = container.get("livenessProbe", {}).get("exec")
        if probe:
            commands.append((f"k8s {workload} liveness", probe["command"]))
    daemon_check = _compose()["services"][DAEMON]["healthcheck"]["test"]
    commands.append(("compose dagster-daemon healthcheck", daemon_check[1:]))
    for instruction, arguments in _dockerfile_stages()[-1]:
        if instruction == "CMD":
            commands.append(("Dockerfile CMD", yaml.safe_load(arguments)))
    return commands


def test_every_command_is_an_installed_entry_point_with_valid_arguments(monkeypatch):
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    commands = _commands()
    assert {argv[0] for _, argv in commands} >= {"btc-realtime", "btc-sim", *DAGSTER_BINARIES}
    for where, argv in commands:
        assert argv[0] in scripts | DAGSTER_BINARIES, f"{where}: {argv[0]} is not installed"
        if argv[0] in scripts:
            _check_btc_command(argv)
        else:
            _check_dagster_command(argv, monkeypatch)


def test_k8s_keeps_the_image_entrypoint():
    # `command` would replace ENTRYPOINT (tini, which reaps the daemon's run processes).
    (entrypoint,) = [a for i, a in _dockerfile_stages()[-1] if i == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint)[0] == "tini"
    for workload, container in _our_k8s_containers():
        assert "command" not in container, f"{workload}: use args, not command"
    for name, service in _our_compose_services().items():
        assert "entrypoint" not in service, name


def test_k8s_runs_one_realtime_service_and_one_daemon():
    for name in ("btc-realtime", DAEMON):
        deployment = _k8s("Deployment", name)
        assert deployment["spec"]["replicas"] == 1, name
        # Recreate: never two writers of the bus and the capture, never two daemons.
        assert deployment["spec"]["strategy"]["type"] == "Recreate", name


# Probes, ports, Prometheus.


def _named_port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def test_realtime_probes_ask_what_the_service_serves():
    served = _served_paths()
    assert served == {"/metrics", "/healthz"}
    container = _container("btc-realtime")
    configured = int(_configmap("btc-settings").get("BTC_METRICS_PORT", METRICS_PORT))
    assert configured == METRICS_PORT

    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    # /healthz is 503 until a model is loaded: it gates traffic, it must not restart the pod.
    assert readiness["path"] == "/healthz"
    assert liveness["path"] == "/metrics"
    assert _named_port(container, readiness["port"]) == configured
    assert _named_port(container, liveness["port"]) == configured

    service = _k8s("Service", "btc-realtime")
    (port,) = service["spec"]["ports"]
    assert _named_port(container, port["targetPort"]) == configured
    annotations = _k8s("Deployment", "btc-realtime")["spec"]["template"]["metadata"]
    assert int(annotations["annotations"]["prometheus.io/port"]) == configured
    assert annotations["annotations"]["prometheus.io/path"] in served


def test_compose_and_dockerfile_check_health_on_the_service_port():
    realtime = _compose()["services"]["realtime"]
    assert str(realtime["environment"]["BTC_METRICS_PORT"]) == str(METRICS_PORT)
    assert f":{METRICS_PORT}/healthz" in " ".join(realtime["healthcheck"]["test"])
    assert any(str(p).endswith(f":{METRICS_PORT}") for p in realtime["ports"])

    stage = _dockerfile_stages()[-1]
    (healthcheck,) = [a for i, a in stage if i == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert f"'{METRICS_PORT}'" in healthcheck
    assert _dockerfile_env()["BTC_METRICS_PORT"] == str(METRICS_PORT)
    assert _dockerfile_env()["BTC_METRICS_HOST"] == "0.0.0.0"
    exposed = {int(p) for i, a in stage if i == "EXPOSE" for p in a.split()}
    assert METRICS_PORT in exposed
    assert 3000 in exposed


def test_dagster_webserver_probes_its_own_port_and_info_route():
    webserver = pytest.importorskip("dagster_webserver.webserver")
    route = "/server_info"
    assert f'"{route}"' in Path(webserver.__file__).read_text()

    container = _container(WEBSERVER)
    port = int(container["args"][container["args"].index("-p") + 1])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == route
        assert _named_port(container, container[probe]["httpGet"]["port"]) == port
    service = _compose()["services"][WEBSERVER]
    compose_port = service["command"][service["command"].index("-p") + 1]
    assert f":{compose_port}{route}" in " ".join(service["healthcheck"]["test"])


def test_compose_prometheus_scrapes_the_service_under_the_alerts_job():
    alerts = ALERTS.read_text()
    (job,) = set(re.findall(r'up\{job="([^"]+)"\}', alerts))
    prometheus = _compose()["services"]["prometheus"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in prometheus["volumes"] if ":ro" in volume)
    config_source = next(s for s, t in mounts.items() if t.endswith("/prometheus.yml"))
    config = yaml.safe_load((ROOT / config_source).read_text())

    (scrape,) = config["scrape_configs"]
    assert scrape["job_name"] == job
    assert scrape["metrics_path"] == "/metrics"
    (targets,) = [s["targets"] for s in scrape["static_configs"]]
    assert targets == [f"realtime:{METRICS_PORT}"]
    # The rules are the project's file, mounted beside the config it is named in.
    (rules,) = config["rule_files"]
    config_target = mounts[config_source]
    rules_target = str(Path(config_target).parent / rules)
    assert mounts["./deploy/prometheus/alerts.yml"] == rules_target


# Secrets and privileges.


def _is_reference(value: Any) -> bool:
    """None (passed from the environment) or `${NAME}` / `${NAME:?…}`: no value written."""
    if value is None:
        return True
    match = INTERPOLATION.fullmatch(str(value))
    return bool(match) and (match.group(2) in {None, ":?", "?"} or not match.group(3))


def test_no_secret_value_is_committed():
    for name, service in _compose()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable):
                assert _is_reference(value), f"compose {name}: {variable} has a value"
    for path in (LOCAL_ENV, PROD_ENV):
        secret = [n for n, v in _env_file(path).items() if SECRET_NAME.search(n) and v]
        assert not secret, f"{path.name} sets {secret}"

    assert not [o for o in _k8s_objects() if o["kind"] == "Secret"], "create Secrets by hand"
    for item in _k8s_objects():
        if item["kind"] == "ConfigMap":
            secret = [k for k in item["data"] if SECRET_NAME.search(k)]
            assert not secret, f"ConfigMap {item['metadata']['name']}: {secret}"
    references = set()
    for workload, spec in _pod_specs():
        for container in spec["containers"]:
            for entry in container.get("env", []):
                if SECRET_NAME.search(entry["name"]):
                    assert "value" not in entry, f"{workload}: {entry['name']} has a value"
                    reference = entry["valueFrom"]["secretKeyRef"]
                    references.add((entry["name"], reference["name"]))
    assert ("BTC_BINANCE_API_KEY", "btc-binance") in references
    assert ("DAGSTER_PG_PASSWORD", "dagster-postgres") in references
    assert ("BTC_REDIS_PASSWORD", "btc-redis") in references
    assert ("REDIS_PASSWORD", "btc-redis") in references

    dockerfile = DOCKERFILE.read_text()
    declared = re.findall(r"^(?:ENV|ARG)\s+(\w+)", dockerfile, flags=re.M)
    declared += re.findall(r"^\s+(\w+)=", dockerfile, flags=re.M)
    assert not [n for n in declared if SECRET_NAME.search(n)], "no secret in the image"
    # Nothing that looks like a Binance key (64 letters and digits) anywhere.
    for path in [COMPOSE, DOCKERFILE, LOCAL_ENV, PROD_ENV, *K8S.glob("*.yaml")]:
        assert not re.search(r"\b[A-Za-z0-9]{64}\b", path.read_text()), path.name
    # Redis' password is only ever a placeholder filled at start, never written down.
    for path in [COMPOSE, *DEPLOY.rglob("*")]:
        if path.is_file():
            for written in re.findall(r"requirepass\s+([^\s\\']+)", path.read_text()):
                assert written == "%s", f"{path.relative_to(ROOT)}: requirepass {written}"


def test_no_key_or_certificate_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    keys = [p for p in tracked if re.search(r"\.(key|pem|crt|p12)$", p) or "redis-tls/" in p]
    assert not keys, keys
    for path in [COMPOSE, *DEPLOY.rglob("*")]:
        if path.is_file():
            assert "-----BEGIN" not in path.read_text(), path.relative_to(ROOT)
    # Where deploy/redis-tls.sh writes compose's files, git does not look.
    for secret in _compose()["secrets"].values():
        ignored = subprocess.run(["git", "check-ignore", "-q", secret["file"]], cwd=ROOT)
        assert ignored.returncode == 0, f"{secret['file']} is not ignored by git"


def test_the_image_runs_as_a_numeric_non_root_user():
    users = [a for i, a in _dockerfile_stages()[-1] if i == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "numeric, so Kubernetes' runAsNonRoot can check it"
    assert int(uid) != 0
    for name, service in _our_compose_services().items():
        assert str(service.get("user", uid)).split(":")[0] not in {"0", "root"}, name


def test_k8s_containers_run_as_non_root_without_privileges():
    for workload, spec in _pod_specs():
        pod = spec.get("securityContext", {})
        for container in spec["containers"]:
            context = pod | container.get("securityContext", {})
            where = f"{workload}/{container['name']}"
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser", 0) > 0, where
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where


def test_realtime_root_filesystem_is_read_only_with_its_writable_paths_mounted():
    container = _container("btc-realtime")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert _configmap("btc-settings")["BTC_DATA_DIR"] in mounted
    assert "/tmp" in mounted
    service = _compose()["services"]["realtime"]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]


# Redis: AUTH and TLS only, and who may connect.

REDIS_CLIENTS = {"btc-realtime", WEBSERVER, DAEMON}
COMPOSE_REDIS_CLIENTS = {"realtime", WEBSERVER, DAEMON}


def _redis_start_script() -> str:
    """The shell script the k8s Redis container runs (compose runs the same one)."""
    container = _container("redis")
    shell, flag, script = container["args"]
    assert (shell, flag) == ("sh", "-c")
    return script


def _redis_server_options(script: str) -> tuple[str, dict[str, str]]:
    """The config file and the ``--option value`` pairs of the script's ``exec redis-server``."""
    argv = shlex.split(script.split("exec ", 1)[1])
    assert argv[0] == "redis-server"
    config, options = argv[1], argv[2:]
    assert len(options) % 2 == 0, options
    return config, dict(zip(options[::2], options[1::2], strict=True))


def _secret_files(spec: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, tuple]:
    """Path in the container → (Secret, key) for every file mounted from a Secret."""
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert mount.get("readOnly") is True, mount
        items = secret.get("items")
        assert items, f"{secret['secretName']}: mount only the keys needed, by name"
        for item in items:
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


def _secret_ref(container: Mapping[str, Any], variable: str) -> tuple[str, str]:
    (entry,) = [e for e in container.get("env", []) if e["name"] == variable]
    reference = entry["valueFrom"]["secretKeyRef"]
    return reference["name"], reference["key"]


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are checked here"
    return selector["matchLabels"].items() <= labels.items()


def _pod_labels() -> dict[str, dict[str, str]]:
    return {
        item["metadata"]["name"]: item["spec"]["template"]["metadata"]["labels"]
        for item in _k8s_objects()
        if item["kind"] in {"Deployment", "StatefulSet"}
    }


def test_redis_serves_tls_only_and_takes_its_password_from_a_secret():
    statefulset = _k8s("StatefulSet", "redis")
    spec = statefulset["spec"]["template"]["spec"]
    container = _container("redis")
    script = _redis_start_script()
    config, options = _redis_server_options(script)
    (port,) = [p["containerPort"] for p in container["ports"]]

    assert options["--port"] == "0", "no plain-text port"
    assert options["--tls-port"] == str(port)
    assert options["--tls-auth-clients"] == "no"  # clients authenticate with the password
    assert "--requirepass" not in options, "not on the command line, where ps shows it"
    # The certificate, its key and the CA: the three keys of btc-redis-tls, all mounted.
    volumes = {v["name"]: v for v in spec["volumes"]}
    # (redis-data, the claim template, is not among the pod's volumes)
    mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container["volumeMounts"]}
    for option, key in [
        ("--tls-cert-file", "tls.crt"),
        ("--tls-key-file", "tls.key"),
        ("--tls-ca-cert-file", "ca.crt"),
    ]:
        directory, name = options[option].rsplit("/", 1)
        assert name == key, option
        assert mounts[directory]["secret"]["secretName"] == "btc-redis-tls", option
    assert mounts["/tls"]["secret"]["defaultMode"] == 0o440  # group (fsGroup) only
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    # The password: from Secret btc-redis into a file in memory, read as the config file.
    assert _secret_ref(container, "REDIS_PASSWORD") == ("btc-redis", "password")
    assert "printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" > " + config in script
    assert mounts[config.rsplit("/", 1)[0]]["emptyDir"]["medium"] == "Memory"
    # The probe speaks TLS, checks the certificate and authenticates.
    (probe,) = container["readinessProbe"]["exec"]["command"][2:]
    assert f"--tls --cacert {options['--tls-ca-cert-file']}" in probe
    assert 'REDISCLI_AUTH="$REDIS_PASSWORD"' in probe


def test_compose_redis_runs_the_same_script_with_its_files_from_compose_secrets():
    compose = _compose()
    redis = compose["services"]["redis"]
    shell, flag, script = redis["command"]
    assert (shell, flag) == ("sh", "-c")
    # `$$` is compose's escape for a `$` the container's shell expands.
    assert script.replace("$$", "$") == _redis_start_script()
    assert _is_reference(redis["environment"]["REDIS_PASSWORD"])
    assert "BTC_REDIS_PASSWORD" in redis["environment"]["REDIS_PASSWORD"]
    _, options = _redis_server_options(_redis_start_script())
    targets = {s["target"]: compose["secrets"][s["source"]]["file"] for s in redis["secrets"]}
    assert targets[options["--tls-cert-file"]].endswith("/redis-tls/tls.crt")
    assert targets[options["--tls-key-file"]].endswith("/redis-tls/tls.key")
    assert targets[options["--tls-ca-cert-file"]].endswith("/redis-tls/ca.crt")
    assert "/run/redis" in redis["tmpfs"]
    health = redis["healthcheck"]["test"]
    k8s_probe = _container("redis")["readinessProbe"]["exec"]["command"][2]
    assert health == ["CMD-SHELL", k8s_probe.replace("$", "$$")]


def test_every_k8s_redis_client_uses_tls_the_password_and_only_the_ca(clean_environment):
    redis = _container("redis")
    _, options = _redis_server_options(_redis_start_script())
    service = _k8s("Service", "redis")
    (service_port,) = service["spec"]["ports"]
    settings = _configmap("btc-settings")
    clients = set()
    for workload, spec in _pod_specs():
        for container in spec["containers"]:
            environment = _k8s_environment(container)
            if "BTC_REDIS_URL" not in environment:
                continue
            clients.add(workload)
            assert _secret_ref(container, "BTC_REDIS_PASSWORD") == _secret_ref(
                redis, "REDIS_PASSWORD"
            ), workload
            files = _secret_files(spec, container)
            # The CA the server's certificate is signed with; never the server's key.
            assert files[environment["BTC_REDIS_CA_FILE"]] == ("btc-redis-tls", "ca.crt")
            assert ("btc-redis-tls", "tls.key") not in files.values(), workload
    assert clients == REDIS_CLIENTS

    realtime, lake = _settings_from(settings | {"BTC_REDIS_PASSWORD": "r"}, clean_environment)
    for connection in (realtime.redis_connection(), lake.redis_connection()):  # prod: TLS
        assert connection.tls
        assert connection.options()["password"] == "r"
        assert connection.options()["ssl_ca_certs"] == settings["BTC_REDIS_CA_FILE"]
        url = connection.url.split("://", 1)[1]
        assert url.startswith(f"{service['metadata']['name']}:{service_port['port']}/")
    assert service_port["targetPort"] == redis["ports"][0]["name"]
    assert str(service_port["port"]) == options["--tls-port"]


def test_every_compose_redis_client_uses_tls_the_password_and_the_ca(clean_environment):
    compose = _compose()
    redis = compose["services"]["redis"]
    server_ca = next(s["source"] for s in redis["secrets"] if s["target"].endswith("ca.crt"))
    env = _env_file(PROD_ENV) | SHELL_SECRETS
    for name in COMPOSE_REDIS_CLIENTS:
        service = compose["services"][name]
        environment = _service_environment(name, env)
        (secret,) = service["secrets"]
        assert (secret["source"], secret["target"]) == (
            server_ca,
            environment["BTC_REDIS_CA_FILE"],
        ), name
        realtime, lake = _settings_from(environment, clean_environment)
        for connection in (realtime.redis_connection(), lake.redis_connection()):
            assert connection.tls, name
            assert connection.url.startswith("rediss://redis:6379/"), name
            assert connection.options()["password"] == SHELL_SECRETS["BTC_REDIS_PASSWORD"]


def test_compose_puts_redis_on_a_network_only_its_clients_join():
    compose = _compose()
    assert compose["services"]["redis"]["networks"] == ["redis"]
    assert compose["networks"]["redis"]["internal"] is True
    joined = {n for n, s in compose["services"].items() if "redis" in s.get("networks", [])}
    assert joined == COMPOSE_REDIS_CLIENTS | {"redis"}


@pytest.mark.parametrize(
    ("server", "clients", "port"),
    [("redis", REDIS_CLIENTS, 6379), ("postgres", {WEBSERVER, DAEMON}, 5432)],
    ids=["redis", "postgres"],
)
def test_network_policies_let_only_the_clients_reach_the_databases(server, clients, port):
    labels = _pod_labels()
    policy = _k8s("NetworkPolicy", server)["spec"]
    selected = {name for name, pod in labels.items() if _matches(policy["podSelector"], pod)}
    assert selected == {server}
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    allowed = set()
    for peer in rule["from"]:
        assert set(peer) == {"podSelector"}, "from this namespace's pods only"
        matched = {name for name, pod in labels.items() if _matches(peer["podSelector"], pod)}
        assert matched, f"{peer}: a selector that matches no pod (a label typo?)"
        allowed |= matched
    assert allowed == clients
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    server_ports = [p["containerPort"] for p in _container(server)["ports"]]
    assert server_ports == [port]


def test_redis_tls_script_names_the_hosts_clients_connect_to():
    (defaults,) = re.findall(r"set -- (redis [^\n|]*)", REDIS_TLS_SCRIPT.read_text())
    hosts = set(defaults.split())
    namespace = _kustomization()["namespace"]
    service = _k8s("Service", "redis")["metadata"]["name"]
    assert {service, f"{service}.{namespace}.svc", "localhost"} <= hosts  # k8s and probes
    assert "redis" in _compose()["services"]  # compose's host name for it
    assert _configmap("btc-settings")["BTC_REDIS_URL"].startswith(f"rediss://{service}:")


# Shared state: the data volume, Dagster's instance.


def test_the_service_and_dagster_share_the_data_directory():
    # The lake's live assets read the capture segments at <BTC_DATA_DIR>/capture.
    data_dir = _configmap("btc-settings")["BTC_DATA_DIR"]
    for workload in ("btc-realtime", WEBSERVER, DAEMON):
        container = _container(workload)
        spec = _k8s("Deployment", workload)["spec"]["template"]["spec"]
        claims = {
            volume["name"]: volume["persistentVolumeClaim"]["claimName"]
            for volume in spec["volumes"]
            if "persistentVolumeClaim" in volume
        }
        mounts = {m["mountPath"]: claims.get(m["name"]) for m in container["volumeMounts"]}
        assert mounts.get(data_dir) == "btc-data", workload
    assert "ReadWriteMany" in _k8s("PersistentVolumeClaim", "btc-data")["spec"]["accessModes"]

    compose = _compose()
    for name in ("realtime", WEBSERVER, DAEMON):
        service = compose["services"][name]
        data_dir = service["environment"]["BTC_DATA_DIR"]
        assert f"btc-data:{data_dir}" in service["volumes"], name
    compute_logs = compose["services"][DAEMON]["environment"]["DAGSTER_COMPUTE_LOGS_DIR"]
    assert compute_logs.startswith(f"{data_dir}/")


def test_compose_volumes_and_bind_mounts_exist():
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_dagster_instance_config_is_valid_and_its_variables_are_set():
    config = yaml.safe_load(DAGSTER_INSTANCE.read_text())
    dagster_config = pytest.importorskip("dagster._core.instance.config")
    result = dagster_config.validate_config(dagster_config.dagster_instance_config_schema(), config)
    assert result.success, result.errors
    # psycopg2 is the driver dagster-postgres installs; SQLAlchemy 2.1 would pick psycopg 3.
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"

    needed = set(re.findall(r"env:\s*(\w+)", DAGSTER_INSTANCE.read_text()))
    assert "DAGSTER_PG_PASSWORD" in needed
    image = _dockerfile_env()
    compose = _compose()["services"]
    for name in (WEBSERVER, DAEMON):
        assert needed <= set(compose[name]["environment"]) | set(image), name
        assert needed <= set(_k8s_environment(_container(name))) | set(image), name
    # The image puts the instance config where DAGSTER_HOME says.
    copies = [a for i, a in _dockerfile_stages()[-1] if i == "COPY"]
    assert f"deploy/dagster/dagster.yaml {image['DAGSTER_HOME']}/dagster.yaml" in copies


def test_dagster_webserver_and_daemon_see_the_same_settings():
    # BTC_HISTORY_START decides the partitions each of them loads.
    compose = _compose()["services"]
    assert compose[WEBSERVER]["environment"] == compose[DAEMON]["environment"]
    webserver, daemon = _container(WEBSERVER), _container(DAEMON)
    assert webserver["envFrom"] == daemon["envFrom"]
    assert webserver["env"] == daemon["env"]
    assert webserver["image"] == daemon["image"]


# The image build.


def test_dockerfile_installs_cpu_torch_and_the_matching_dagster_postgres():
    text = DOCKERFILE.read_text()
    assert "https://download.pytorch.org/whl/cpu" in text
    assert re.search(r"pip install --extra-index-url \"\$\{TORCH_INDEX_URL\}\"", text)
    assert "+cpu" in text  # the build refuses a CUDA torch

    batch = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = "\n".join(batch["optional-dependencies"]["batch"])
    pins = dict(re.findall(r"^([\w-]+)==([\w.+]+)$", requirements, flags=re.M))
    # A plain pin (no local label) is what lets the index's 2.13.0+cpu wheel satisfy it.
    assert "+" not in pins["torch"]
    # Dagster's libraries share one version (dagster-aws, dagster-duckdb, dagster-postgres).
    (postgres_version,) = re.findall(r"ARG DAGSTER_POSTGRES_VERSION=(\S+)", text)
    assert postgres_version == pins["dagster-aws"] == pins["dagster-duckdb"]


def _dockerignore_patterns() -> list[str]:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif char == "*":
            out, i = out + "[^/]*", i + 1
        elif char == "?":
            out, i = out + "[^/]", i + 1
        elif char == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(char), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_nothing_local():
    patterns = _dockerignore_patterns()
    for path in (
        ".venv/bin/python",
        "data/catalog.sqlite",
        ".git/HEAD",
        ".env",
        ".pytest_cache/v/cache",
        ".hypothesis/examples/x",
        ".ruff_cache/x",
        "btc_platform_tests/conftest.py",
        "realtime/__pycache__/cli.cpython-311.pyc",
        "btc_platform.egg-info/PKG-INFO",
        "deploy/compose/prod.env",
    ):
        assert _ignored(path, patterns), f"{path} would be sent to the build"

    copied = []
    for stage in _dockerfile_stages():
        for instruction, arguments in stage:
            if instruction == "COPY" and not arguments.startswith("--from"):
                copied += arguments.split()[:-1]
    package = {"pyproject.toml", "README.md", "realtime", "btc_platform", "dbt_like_sql"}
    assert package <= set(copied)
    for source in copied:
        path = ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        assert files, f"COPY {source}: nothing there"
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not _ignored(relative, patterns), f"COPY needs {relative}"


# Tools, where this machine has them.


def test_docker_compose_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not on PATH")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    environment = {"PATH": "/usr/bin:/bin", **SHELL_SECRETS}
    result = subprocess.run(
        [docker, "compose", "--env-file", str(LOCAL_ENV), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_kustomization_lists_every_manifest_and_renders():
    resources = _kustomization()["resources"]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == manifests
    images = {image["name"] for image in _kustomization()["images"]}
    assert {c["image"] for _, c in _our_k8s_containers()} <= images

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH (the manifests were parsed above)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert len(rendered) == len(_k8s_objects())
    namespaced = [doc for doc in rendered if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {"btc"}
