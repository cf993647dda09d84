"""The alert rules read metrics the service exports, and every rule is complete enough to act on.

A rule on a misspelt metric never fires and nothing says so: this test is what says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from realtime.service.metrics import Metrics

PROMETHEUS = Path(__file__).parents[2] / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
CONFIG = PROMETHEUS / "prometheus.yml"

PROMETHEUS_OWN = {"up"}
"""Series Prometheus writes itself for every target."""
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
PROMQL_WORDS |= {"and", "or", "unless", "inf", "nan"}
REQUIRED = {
    "BtcFeaturesStale": "btc_feature_age_seconds",
    "BtcTickLatencyHigh": "btc_tick_latency_seconds_bucket",
    "BtcStreamSilent": "btc_stream_last_message_timestamp_seconds",
    "BtcReanchorSlow": "btc_reanchor_duration_seconds_bucket",
    "BtcModelLoadFailures": "btc_model_load_failures_total",
}


def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_series() -> set[str]:
    """Every series name ``/metrics`` can show, labelled metrics included before first use."""
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in SUFFIXES[family.type]
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (identifiers that are not functions,
    keywords, label names or label values)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    identifiers = re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()", expr)
    return {name for name in identifiers if name.lower() not in PROMQL_WORDS}


def test_the_name_finder_sees_through_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(btc_tick_latency_seconds_bucket{le!="x"}'
        "[5m]))) > 0.1 and on (instance) time() - btc_stream_last_message_timestamp_seconds > 6e1"
    )
    assert metric_names(expr) == {
        "btc_tick_latency_seconds_bucket",
        "btc_stream_last_message_timestamp_seconds",
    }


def test_every_metric_in_a_rule_is_exported_by_the_service():
    exported = exported_series()
    assert "btc_model_load_failures_total" in exported  # labelled, no child yet: still listed
    for rule in rules():
        unknown = metric_names(rule["expr"]) - exported - PROMETHEUS_OWN
        assert not unknown, f"{rule['alert']} reads metrics the service does not export: {unknown}"


def test_bucket_bounds_in_rules_are_bounds_of_the_histogram():
    buckets = {
        (sample.name, sample.labels["le"])
        for family in Metrics().registry.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    for rule in rules():
        for name, bound in re.findall(r'(\w+_bucket)\{[^}]*le="([^"]+)"', rule["expr"]):
            assert (name, bound) in buckets, f"{rule['alert']}: {name} has no bucket le={bound}"


def test_every_rule_can_be_acted_on():
    seen = set()
    for rule in rules():
        name = rule["alert"]
        assert name not in seen, f"{name} is defined twice"
        seen.add(name)
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no for:"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_the_required_thresholds_have_rules():
    by_name = {rule["alert"]: rule["expr"] for rule in rules()}
    for alert, metric in REQUIRED.items():
        assert metric in metric_names(by_name[alert]), alert
    assert re.search(r"btc_feature_age_seconds\s*>\s*3\b", by_name["BtcFeaturesStale"])
    assert "histogram_quantile(0.95" in by_name["BtcTickLatencyHigh"]
    assert re.search(r">\s*0\.1\b", by_name["BtcTickLatencyHigh"])
    assert re.search(r"time\(\) - btc_stream_last_message_timestamp_seconds > 60\b",
                     by_name["BtcStreamSilent"])  # fmt: skip
    assert 'le="60.0"' in by_name["BtcReanchorSlow"]


def test_prometheus_scrapes_the_service_and_loads_the_rules():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "btc-realtime"  # the job BtcRealtimeDown watches
    assert job["metrics_path"] == "/metrics"
    (targets,) = (group["targets"] for group in job["static_configs"])
    assert [target.rsplit(":", 1)[1] for target in targets] == ["9108"]


def test_promtool_accepts_the_rules_and_the_config():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian package prometheus)")
    for command in (["check", "rules", str(ALERTS)], ["check", "config", str(CONFIG)]):
        result = subprocess.run([promtool, *command], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
