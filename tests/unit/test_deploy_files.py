"""The deployment files are loadable as they are: compose.yaml against the Compose schema (a
broken one is caught), the Grafana dashboard and the Prometheus rules well-formed, the Dockerfile
running the image's commands as a non-root user. (.ci/run also runs hadolint and promtool.)"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((DEPLOY / "compose-spec.json").read_text())
    return [error.message for error in Draft7Validator(schema).iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["comand"] = ["intellizap", "api"]  # a typo
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "when_ready"
    errors = schema_errors(broken)
    assert len(errors) >= 2, errors


def test_compose_runs_one_image_as_migrate_then_api_and_worker() -> None:
    services = compose()["services"]
    image = services["migrate"]["image"]
    assert {services[name]["image"] for name in ("migrate", "api", "worker")} == {image}
    assert [services[name]["command"] for name in ("migrate", "api", "worker")] == [
        ["intellizap", "migrate"],
        ["intellizap", "api"],
        ["intellizap", "worker"],
    ]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    evolution = [
        name for name, service in services.items() if "evolution" in service.get("profiles", [])
    ]
    assert sorted(evolution) == ["evolution", "evolution-postgres", "evolution-redis"]
    assert services["evolution"]["image"].startswith("evoapicloud/evolution-api:v2")
    # No secret has a default: compose refuses to start without them.
    environment = services["api"]["environment"]
    assert ":?" in environment["DATABASE_URL"]
    assert ":?" in environment["WEBHOOK_SECRET"]


def test_dockerfile_is_multi_stage_non_root_with_ffmpeg_and_a_readiness_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE)
    assert [alias for _, alias in stages] == ["uv", "build", "runtime"]
    assert "ffmpeg" in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert user == ["10001:10001"]
    assert "/health/ready" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert not re.search(r"^ENTRYPOINT", dockerfile, re.MULTILINE)  # start commands replace CMD
    assert re.search(r'^CMD \["intellizap", "api"\]$', dockerfile, re.MULTILINE)


def test_grafana_dashboard_is_importable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "intellizap.json").read_text())
    assert dashboard["uid"] == "intellizap"
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_alert_rules_have_what_an_operator_needs() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    for name in (
        "IntelliZapQueueBackingUp",
        "IntelliZapWorkerDown",
        "IntelliZapSummariesFailing",
        "IntelliZapWebhooksFailing",
    ):
        assert name in alerts
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        "#" + re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)
    }
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        for link in re.findall(
            r"docs/operations\.md(#[a-z0-9-]+)", rule["annotations"]["description"]
        ):
            assert link in anchors, link
