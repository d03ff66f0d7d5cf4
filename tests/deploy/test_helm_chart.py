"""The Helm chart (deploy/helm/campaigns): `helm lint`, and what `helm template` renders
validated by kubeconform against the Kubernetes JSON schemas, offline, then read for what
the chart promises. helm, kubeconform and the schemas come from deploy/tools.sh."""

import base64
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "campaigns"
BIN = ROOT / ".local" / "bin"
KUBERNETES_VERSION = "1.34.0"  # as deploy/tools.sh lays out its schemas
SCHEMAS = (f"{ROOT}/.local/tools/kubernetes-json-schema/"
           "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json")
PORTS = {"campaign-api": 8080, "segment-svc": 8081, "flow-engine": 8082, "scheduler": 8083, "mailer": 8084}
CONSUMERS = {"campaign-api", "segment-svc", "scheduler", "mailer"}

# A fresh clone builds helm and kubeconform here (a few minutes); `make test` did it before.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", autouse=True)
def tools():
    installed = subprocess.run([str(ROOT / "deploy" / "tools.sh"), "chart"], capture_output=True, text=True,
                               env={**os.environ, "KUBERNETES_VERSION": KUBERNETES_VERSION})
    assert installed.returncode == 0, installed.stderr


def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)


SECRET = ("--set", "secrets.TRACKING_SECRET=a-secret-of-ours")


def helm_template(*values: str) -> subprocess.CompletedProcess:
    return run(str(BIN / "helm"), "template", "shop", str(CHART), "--kube-version", KUBERNETES_VERSION, *values)


def template(*values: str) -> str:
    rendered = helm_template(*SECRET, *values)
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def manifests(*values: str) -> dict[tuple[str, str], dict]:
    """What the chart renders, by (kind, name)."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(template(*values)) if doc}


def kubeconform(documents: str) -> subprocess.CompletedProcess:
    return run(str(BIN / "kubeconform"), "-strict", "-summary", "-kubernetes-version", KUBERNETES_VERSION,
               "-schema-location", SCHEMAS, stdin=documents)


OVERRIDES = ("--set", "secrets.existingSecret=campaigns-prod", "--set", "gateway.service.type=LoadBalancer",
             "--set", "gateway.service.port=443", "--set", "services.mailer.replicas=5",
             "--set", "services.scheduler.replicas=1", "--set", "podDisruptionBudget.enabled=false",
             "--set", "metrics.scrape=false", "--set", "topics.initContainer=false",
             "--set", "extraConfig.DUE_WINDOW=3000", "--set", "services.mailer.env.SMTP_CONNECTIONS=32")


def test_the_chart_lints_clean():
    linted = run(str(BIN / "helm"), "lint", "--strict", "--kube-version", KUBERNETES_VERSION, str(CHART))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 chart(s) failed" in linted.stdout


@pytest.mark.parametrize("values", [(), OVERRIDES], ids=["defaults", "overrides"])
def test_every_rendered_manifest_is_valid_kubernetes(values):
    rendered = template(*values)
    count = sum(1 for doc in yaml.safe_load_all(rendered) if doc)
    checked = kubeconform(rendered)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Every manifest validated against a schema: none skipped for want of one.
    assert f"{count} resources found parsing stdin - Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in checked.stdout


def test_kubeconform_really_checks_against_the_schemas():
    deployment = manifests()[("Deployment", "shop-campaigns-mailer")]
    deployment["spec"]["replicaz"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    checked = kubeconform(yaml.safe_dump(deployment))
    assert checked.returncode != 0
    assert "additional properties 'replicaz' not allowed" in checked.stdout
    assert "got string, want integer" in checked.stdout


def test_a_deployment_per_service_with_probes_metrics_resources_and_the_topics():
    rendered = manifests("--set", "services.mailer.replicas=5")
    for service, port in PORTS.items():
        deployment = rendered[("Deployment", f"shop-campaigns-{service}")]
        pod = deployment["spec"]["template"]
        [container] = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", service.replace("-", "_")]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env[("GATEWAY_PORT" if service == "campaign-api" else "HTTP_PORT")] == str(port)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, (service, probe)
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        assert [source for item in container["envFrom"] for source in item] == ["configMapRef", "secretRef"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert all(pod["metadata"]["labels"][key] == value for key, value in selector.items())
        init = pod["spec"].get("initContainers", [])
        if service in CONSUMERS:
            assert [c["command"] for c in init] == [["python", "-m", "servicekit.topics"]], service
        else:
            assert init == [], "flow-engine uses no topic"
    assert rendered[("Deployment", "shop-campaigns-mailer")]["spec"]["replicas"] == 5
    assert rendered[("Deployment", "shop-campaigns-flow-engine")]["spec"]["replicas"] == 1


def test_a_service_for_the_gateway_and_each_http_port():
    rendered = manifests()
    for service, port in PORTS.items():
        spec = rendered[("Service", f"shop-campaigns-{service}")]["spec"]
        assert spec["selector"]["app.kubernetes.io/component"] == service
        assert spec["ports"][0]["targetPort"] == "http"
        assert spec["ports"][0]["port"] == (80 if service == "campaign-api" else port)
    gateway = manifests(*OVERRIDES)[("Service", "shop-campaigns-campaign-api")]["spec"]
    assert (gateway["type"], gateway["ports"][0]["port"]) == ("LoadBalancer", 443)


def test_settings_in_a_configmap_and_secrets_in_a_secret_or_an_existing_one():
    rendered = manifests()
    config = rendered[("ConfigMap", "shop-campaigns-config")]["data"]
    assert config["KAFKA_REPLICATION_FACTOR"] == "3" and config["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert config["SEGMENT_SVC_URL"] == "http://shop-campaigns-segment-svc:8081"
    assert config["FLOW_ENGINE_URL"] == "http://shop-campaigns-flow-engine:8082"
    # /api/status asks every service's /healthz
    assert config["SCHEDULER_URL"] == "http://shop-campaigns-scheduler:8083"
    assert config["MAILER_URL"] == "http://shop-campaigns-mailer:8084"
    assert config["HTTP_HOST"] == "0.0.0.0"
    assert not {"DATABASE_URL", "SMTP_PASSWORD", "TRACKING_SECRET", "API_KEYS"} & set(config)
    # Empty settings are left out: the mailer would AUTH as "" with an empty SMTP_USERNAME.
    assert "SMTP_USERNAME" not in config and "KAFKA_TOPIC_PREFIX" not in config
    secret = rendered[("Secret", "shop-campaigns-secrets")]["data"]
    assert set(secret) == {"DATABASE_URL", "TRACKING_SECRET"}, "the empty ones are left out"
    assert base64.b64decode(secret["TRACKING_SECRET"]) == b"a-secret-of-ours"
    filled = manifests("--set", "secrets.SMTP_PASSWORD=s3cret", "--set", "secrets.API_KEYS=a\\,b",
                       "--set", "config.SMTP_USERNAME=mailer")
    secret = filled[("Secret", "shop-campaigns-secrets")]["data"]
    assert set(secret) == {"DATABASE_URL", "SMTP_PASSWORD", "TRACKING_SECRET", "API_KEYS"}
    assert base64.b64decode(secret["API_KEYS"]) == b"a,b"
    assert filled[("ConfigMap", "shop-campaigns-config")]["data"]["SMTP_USERNAME"] == "mailer"

    overridden = manifests(*OVERRIDES)
    assert not [key for key in overridden if key[0] == "Secret"], "an existing Secret is used, none made"
    mailer = overridden[("Deployment", "shop-campaigns-mailer")]["spec"]["template"]
    [container] = mailer["spec"]["containers"]
    assert {"secretRef": {"name": "campaigns-prod"}} in container["envFrom"]
    assert {"name": "SMTP_CONNECTIONS", "value": "32"} in container["env"]
    assert overridden[("ConfigMap", "shop-campaigns-config")]["data"]["DUE_WINDOW"] == "3000"
    assert "prometheus.io/scrape" not in mailer["metadata"]["annotations"]
    assert "initContainers" not in mailer["spec"]


def test_a_disruption_budget_for_each_service_of_several_pods():
    budgets = {name for kind, name in manifests("--set", "services.scheduler.replicas=1") if kind == "PodDisruptionBudget"}
    assert budgets == {"shop-campaigns-campaign-api", "shop-campaigns-segment-svc", "shop-campaigns-mailer"}


def test_without_a_tracking_secret_the_chart_refuses_to_render():
    refused = helm_template()
    assert refused.returncode != 0
    assert "secrets.TRACKING_SECRET is required" in refused.stderr
    assert helm_template("--set", "secrets.existingSecret=campaigns-prod").returncode == 0
