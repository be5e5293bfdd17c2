"""The SRE artefacts in ops/ (Grafana dashboard, Prometheus alerts) only use metrics patron exposes."""

import json
import re
from pathlib import Path

import pytest

from actors.metrics import Metrics

OPS = Path(__file__).parents[1] / "ops"
DASHBOARD = OPS / "grafana" / "patron.json"
ALERTS = OPS / "prometheus" / "alerts.yml"
SCRAPE = OPS / "prometheus" / "scrape.example.yml"

METRIC_NAME = re.compile(r"\b(?:patron|process)_[a-z_]+")
REQUIRED_ALERTS = ("PatronNoMidnightRun", "PatronRejectionRatioHigh", "PatronBatchLatencyP99High",
                   "PatronShardDown", "PatronAnomalySpike")
# The names a family of each type goes by: its series on /metrics, and a histogram's or summary's own name.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("", "_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"), "info": ("_info",)}


def exposed_names() -> set[str]:
    """Every series name a serve process can expose, labelled families with no children yet included."""
    names = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def unknown_metrics(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text)) - exposed_names()


def dashboard_panels() -> list[dict]:
    """Every panel, those inside collapsed rows included, without the rows themselves."""
    panels = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target.get("expr", "") for panel in dashboard_panels() for target in panel.get("targets", [])]
    variables = dashboard.get("templating", {}).get("list", [])
    return expressions + [variable["query"]["query"] for variable in variables if variable.get("type") == "query"]


def alert_blocks() -> dict[str, str]:
    """Each alerting rule's text, from its `- alert:` line to the next one."""
    parts = re.split(r"^\s*- alert:\s*", ALERTS.read_text(), flags=re.MULTILINE)
    return {part.split()[0]: part for part in parts[1:]}


def is_balanced(expression: str) -> bool:
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression):  # brackets inside label values do not count
        if char in "([{":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return False
    return not stack


def test_the_dashboard_is_importable_json_with_a_prometheus_input():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert all(panel["datasource"]["uid"] == "${DS_PROMETHEUS}" for panel in dashboard_panels())


def test_every_dashboard_panel_has_a_target_expression():
    panels = dashboard_panels()
    assert len(panels) >= 20
    empty = [panel["title"] for panel in panels
             if not [target for target in panel.get("targets", []) if target.get("expr", "").strip()]]
    assert empty == []


def test_every_dashboard_panel_has_a_unique_id_and_a_title():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel.get("title") for panel in dashboard_panels())


def test_every_dashboard_expression_has_balanced_brackets():
    unbalanced = [expression for expression in dashboard_expressions() if not is_balanced(expression)]
    assert unbalanced == []


def test_every_metric_the_dashboard_uses_is_exposed():
    names = {name for expression in dashboard_expressions() for name in METRIC_NAME.findall(expression)}
    assert len(names) >= 20
    assert unknown_metrics(DASHBOARD.read_text()) == set()


def test_every_metric_the_alerts_use_is_exposed():
    assert len(set(METRIC_NAME.findall(ALERTS.read_text()))) >= 5
    assert unknown_metrics(ALERTS.read_text()) == set()


@pytest.mark.parametrize("text", ["rate(patron_transactions_totl[5m])", "patron_shard_up_bucket",
                                  "process_resident_memory", "patron_batch_latency_seconds_total"])
def test_a_misspelt_metric_is_reported_as_unknown(text):
    assert unknown_metrics(text) == {METRIC_NAME.search(text).group()}


def test_every_patron_metric_has_a_dashboard_panel():
    used = {re.sub(r"_(?:bucket|count|sum)$", "", name) for expression in dashboard_expressions()
            for name in METRIC_NAME.findall(expression)}
    families = {family.name for family in Metrics().registry.collect() if family.name.startswith("patron_")}
    shown = {family for family in families
             if any(name == family or name.startswith(family + "_") for name in used)}
    assert families - shown == set()


def test_the_alerts_are_one_group_named_patron():
    assert re.findall(r"^\s*- name:\s*(\S+)", ALERTS.read_text(), flags=re.MULTILINE) == ["patron"]
    assert "\t" not in ALERTS.read_text()


@pytest.mark.parametrize("alert", REQUIRED_ALERTS)
def test_each_required_alert_has_an_expression_a_duration_a_severity_and_annotations(alert):
    block = alert_blocks().get(alert)
    assert block is not None, f"{alert} is not defined"
    assert re.search(r"^\s+expr:\s*\S", block, flags=re.MULTILINE)
    assert re.search(r"^\s+for:\s*\d+[smhd]\s*$", block, flags=re.MULTILINE)
    assert re.search(r"^\s+severity:\s*(?:critical|warning|info)\s*$", block, flags=re.MULTILINE)
    assert re.search(r"^\s+summary:\s*\S", block, flags=re.MULTILINE)
    assert re.search(r"^\s+description:\s*\S", block, flags=re.MULTILINE)


def test_no_alert_is_defined_twice():
    names = re.findall(r"^\s*- alert:\s*(\S+)", ALERTS.read_text(), flags=re.MULTILINE)
    assert len(names) == len(set(names))


def test_the_no_midnight_run_alert_also_covers_a_server_that_never_ran_one():
    block = alert_blocks()["PatronNoMidnightRun"]
    assert "process_start_time_seconds" in block
    assert re.search(r"patron_midnight_last_success_timestamp_seconds\s*==\s*0", block)


def test_the_scrape_example_scrapes_the_default_metrics_port_and_loads_the_alerts():
    text = SCRAPE.read_text()
    assert re.search(r"job_name:\s*patron\b", text)
    assert ":9464" in text
    assert re.search(r"^rule_files:\s*\n\s+- alerts\.yml\s*$", text, flags=re.MULTILINE)
