"""The Kubernetes manifests under deploy/, parsed and checked against Clarion itself: its stages,
its CLI's options, the settings it reads, and the embedded NATS it starts when none is given."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.core
import typer.main
import yaml

from clarion.bootstrap import ROLES as STAGES  # the pipeline's stages and the models' training
from clarion.bus import embedded
from clarion.cli import app
from clarion.config import Settings

Doc = dict[str, Any]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CLARION_IMAGE = "ghcr.io/clarion/clarion"
SECRETISH = ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


# --- reading the manifests ----------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(
        p
        for pattern in ("*.yaml", "*.yml")
        for p in DEPLOY.rglob(pattern)
        if p.name != "kustomization.yaml"
    )


@cache
def documents() -> tuple[Doc, ...]:
    found: list[Doc] = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict), f"{path.name}: a document that is not a mapping"
                found.append(doc)
    return tuple(found)


@cache
def kustomization() -> Doc:
    doc: Doc = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return doc


def of_kind(*kinds: str) -> list[Doc]:
    return [d for d in documents() if d["kind"] in kinds]


def named(kind: str, name: str) -> Doc:
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind}s named {name!r}"
    return found[0]


def workloads() -> list[Doc]:
    return of_kind("Deployment", "StatefulSet")


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc, *, init: bool = False) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec["containers"], *(spec.get("initContainers", []) if init else [])]


def all_containers() -> Iterator[tuple[Doc, Doc]]:
    for w in workloads():
        for c in containers(w, init=True):
            yield w, c


def name_of(doc: Doc) -> str:
    name: str = doc["metadata"]["name"]
    return name


def image_name(container: Doc) -> str:
    image: str = container["image"]
    return image


def selects(selector: dict[str, str], workload: Doc) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return bool(selector) and selector.items() <= labels.items()


def container_port(container: Doc, port: int | str) -> int:
    """A probe's or Service's port resolved against the container's ports (by name or number)."""
    for p in container.get("ports", []):
        if port in (p["containerPort"], p.get("name")):
            number: int = p["containerPort"]
            return number
    raise AssertionError(f"container {container['name']} has no port {port!r}")


# --- the CLI as the manifests call it -----------------------------------------------------


def cli_options(command: list[str]) -> tuple[str, dict[str, str | bool]]:
    """`clarion SUBCOMMAND --opt value --flag …` → (SUBCOMMAND, {--opt: value, --flag: True}),
    refusing any option the real command does not have."""
    assert command[0] == "clarion", command
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    sub = group.commands.get(command[1])
    assert sub is not None, f"no `clarion {command[1]}` command"
    params = {
        opt: p
        for p in sub.params
        if isinstance(p, typer.core.TyperOption)
        for opt in (*p.opts, *p.secondary_opts)
    }
    found: dict[str, str | bool] = {}
    rest = iter(command[2:])
    for token in rest:
        assert token in params, f"`clarion {command[1]}` has no option {token}"
        found[token] = True if params[token].is_flag else next(rest)
    return command[1], found


def worker_roles() -> dict[str, list[str]]:
    """Deployment name → the stages its `clarion worker` runs."""
    roles = {}
    for w in of_kind("Deployment"):
        for c in containers(w):
            if c["command"][:2] == ["clarion", "worker"]:
                _, options = cli_options(c["command"])
                stages = options["--stages"]
                assert isinstance(stages, str)
                roles[name_of(w)] = stages.split(",")
    return roles


# --- settings -----------------------------------------------------------------------------


def config_map() -> dict[str, str]:
    data: dict[str, str] = named("ConfigMap", "clarion-config")["data"]
    return data


def environment(container: Doc) -> dict[str, str]:
    """The container's variables: ConfigMap values as they are, secrets as `secret:NAME/KEY`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            env[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
        elif "value" in var:
            env[var["name"]] = var["value"]
    return env


def example_secrets() -> dict[str, str]:
    lines = (DEPLOY / "secrets.env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs}


def service_behind(url: str) -> tuple[Doc, int]:
    """The Service a URL's host names, and the container port its URL port leads to."""
    parts = urlsplit(url)
    service = named("Service", parts.hostname or "")
    default = {"http": 80, "https": 443, "nats": 4222}[parts.scheme]
    port = next(p for p in service["spec"]["ports"] if p["port"] == (parts.port or default))
    backends = [w for w in workloads() if selects(service["spec"]["selector"], w)]
    assert backends, f"Service {name_of(service)} selects no pods"
    target = port.get("targetPort", port["port"])
    return service, container_port(containers(backends[0])[0], target)


# --- NATS ---------------------------------------------------------------------------------


def nats() -> Doc:
    (statefulset,) = of_kind("StatefulSet")
    return statefulset


def nats_conf() -> str:
    volumes = {v["name"]: v for v in pod_spec(nats()).get("volumes", [])}
    (container,) = containers(nats())
    args = container["args"]
    conf_path = Path(args[args.index("--config") + 1])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(conf_path.parent))
    config = named("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    conf: str = config["data"][conf_path.name]
    return conf


def conf_value(conf: str, key: str) -> str:
    found = re.search(rf"^\s*{key}:\s*(\S+)\s*$", conf, re.MULTILINE)
    assert found, f"no {key} in the NATS config"
    return found.group(1)


# --- the tests ----------------------------------------------------------------------------


def test_every_document_has_an_api_version_a_kind_and_a_name() -> None:
    assert len(documents()) >= 10
    for doc in documents():
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), doc


def test_the_kustomization_lists_exactly_the_manifest_files() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), "a file listed twice"
    assert sorted(DEPLOY / r for r in listed) == manifest_files()


def test_images_are_pinned_in_one_place_the_kustomization() -> None:
    pins = {i["name"]: i["newTag"] for i in kustomization()["images"]}
    images = {image_name(c) for _, c in all_containers()}
    assert images == set(pins), "every image, and only those, pinned in kustomization.yaml"
    for image in images:
        assert not re.search(r"[:@]", image), f"{image}: its version belongs in one place"
    assert pins[CLARION_IMAGE] == version("clarion"), "the image of this release"


def test_every_container_has_probes_and_resource_requests() -> None:
    for workload, c in all_containers():
        where = f"{name_of(workload)}/{c['name']}"
        assert c["resources"]["requests"].keys() >= {"cpu", "memory"}, where
        assert "memory" in c["resources"]["limits"], where
    for workload in workloads():
        for c in containers(workload):
            where = f"{name_of(workload)}/{c['name']}"
            assert {"readinessProbe", "livenessProbe"} <= c.keys(), where


def test_every_probe_reaches_a_port_the_container_listens_on() -> None:
    probed = 0
    for workload in workloads():
        for c in containers(workload):
            for kind in PROBES:
                probe = c.get(kind)
                if probe is None:
                    continue
                handler = probe.get("httpGet") or probe.get("tcpSocket")
                assert handler, f"{name_of(workload)} {kind}: neither httpGet nor tcpSocket"
                container_port(c, handler["port"])
                probed += 1
    assert probed >= 2 * len(workloads())


def test_clarion_commands_are_real_cli_commands_with_real_options() -> None:
    commands = Counter[str]()
    for workload, c in all_containers():
        if image_name(c) != CLARION_IMAGE:
            continue
        command, options = cli_options(c["command"])
        commands[command] += 1
        if command == "worker":
            assert options.get("--http") is True, f"{name_of(workload)}: no /healthz without it"
            assert container_port(c, "http") == int(str(options["--port"]))
        if command == "sim":
            assert options["--host"] == "0.0.0.0"
            assert container_port(c, "http") == int(str(options["--port"]))
    assert commands["worker"] >= 4
    assert commands["migrate"] >= 1
    assert commands["sim"] == 1


def test_each_stage_runs_in_exactly_one_worker_role() -> None:
    roles = worker_roles()
    assert "clarion-api" in roles
    for role, stages in roles.items():
        assert stages, role
        assert set(stages) <= set(STAGES), f"{role}: unknown stages {set(stages) - set(STAGES)}"
    runs = Counter(stage for stages in roles.values() for stage in stages)
    assert set(runs) == set(STAGES), f"no role runs {set(STAGES) - set(runs)}"
    assert all(n == 1 for n in runs.values()), f"stages in several roles: {runs}"


def test_the_api_is_the_service_for_webhooks_and_migrates_before_serving() -> None:
    api = named("Deployment", "clarion-api")
    service, port = service_behind(config_map()["CLARION_PUBLIC_URL"])
    assert name_of(service) == "clarion-api"
    assert selects(service["spec"]["selector"], api)
    _, options = cli_options(containers(api)[0]["command"])
    assert port == int(str(options["--port"]))
    assert [c["command"] for c in pod_spec(api)["initContainers"]] == [["clarion", "migrate"]]


def test_no_secret_is_written_into_a_manifest() -> None:
    checked = 0
    for workload, c in all_containers():
        for var in c.get("env", []):
            if any(word in var["name"] for word in SECRETISH):
                where = f"{name_of(workload)}/{c['name']} {var['name']}"
                assert "value" not in var, f"{where}: a literal secret"
                assert "secretKeyRef" in var.get("valueFrom", {}), where
                checked += 1
        for source in c.get("envFrom", []):
            assert source.keys() & {"configMapRef", "secretRef"}, source
    assert checked >= 3
    for config in of_kind("ConfigMap"):
        for key in config.get("data", {}):
            assert not any(word in key for word in SECRETISH), f"{name_of(config)}: {key}"
    assert not of_kind("Secret"), "Secrets come from secrets.env (secretGenerator), not a file"


def test_secret_references_name_the_generated_secret_and_its_keys() -> None:
    generated = {g["name"]: g for g in kustomization()["secretGenerator"]}
    keys = example_secrets()
    refs = 0
    for _, c in all_containers():
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] in generated, ref
                assert ref["key"] in keys, f"{ref['key']} missing from secrets.env.example"
                refs += 1
    assert refs >= 3
    assert all(g["envs"] == ["secrets.env"] for g in generated.values())
    assert "secrets.env" in (DEPLOY / ".gitignore").read_text().split()


def test_clarion_processes_use_the_external_servers_and_listen_on_the_pod() -> None:
    """Without CLARION_DATABASE_URL and CLARION_NATS_URL a process starts embedded servers
    inside its pod; with CLARION_HTTP_HOST at its default, probes cannot reach it."""
    checked = 0
    for workload, c in all_containers():
        if image_name(c) != CLARION_IMAGE or c["command"][1] == "sim":
            continue
        env = environment(c)
        where = f"{name_of(workload)}/{c['name']}"
        assert env.get("CLARION_DATABASE_URL", "").startswith("secret:"), where
        assert env.get("CLARION_NATS_URL"), where
        if c["command"][1] == "worker":
            assert env.get("CLARION_HTTP_HOST") == "0.0.0.0", where
            assert {"CLARION_UNSUBSCRIBE_SECRET", "CLARION_SIM_SECRET"} <= env.keys(), where
        checked += 1
    assert checked == len(worker_roles()) + 1  # and the migration


def test_the_config_map_holds_settings_clarion_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    source = inspect.getsource(Settings.from_env)
    for key in config_map():
        assert f'"{key}"' in source, f"Clarion does not read {key}"
    for key, value in config_map().items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    assert settings.http_host == "0.0.0.0"
    assert settings.nats_url == config_map()["CLARION_NATS_URL"]
    assert settings.public_url == config_map()["CLARION_PUBLIC_URL"]
    assert settings.sim_url == config_map()["CLARION_SIM_URL"]


def test_the_nats_and_simulator_urls_lead_to_their_services() -> None:
    nats_service, nats_port = service_behind(config_map()["CLARION_NATS_URL"])
    assert selects(nats_service["spec"]["selector"], nats())
    # not the headless Service: that one also lists servers that are not ready
    assert nats_service["spec"].get("clusterIP") != "None"
    assert nats_port == int(conf_value(nats_conf(), "port"))
    sim = named("Deployment", "clarion-sim")
    sim_service, sim_port = service_behind(config_map()["CLARION_SIM_URL"])
    assert selects(sim_service["spec"]["selector"], sim)
    _, options = cli_options(containers(sim)[0]["command"])
    assert sim_port == int(str(options["--port"]))


def test_postgres_is_an_external_service_the_database_url_names() -> None:
    postgres = named("Service", "clarion-postgres")
    assert postgres["spec"]["type"] == "ExternalName"
    assert "selector" not in postgres["spec"]
    external = postgres["spec"]["externalName"]
    assert "." in external, "a DNS name outside the cluster"
    assert not external.endswith(".svc.cluster.local")
    url = urlsplit(example_secrets()["CLARION_DATABASE_URL"])
    assert url.scheme in ("postgres", "postgresql")
    assert url.hostname == "clarion-postgres"
    assert (url.port or 5432) in {p["port"] for p in postgres["spec"]["ports"]}
    for _, c in all_containers():
        assert "postgres" not in image_name(c), "Postgres is not run in the cluster"


def test_every_selector_matches_pods_and_every_target_port_a_container_port() -> None:
    for workload in workloads():
        assert selects(workload["spec"]["selector"]["matchLabels"], workload), name_of(workload)
    for service in of_kind("Service"):
        if service["spec"].get("type") == "ExternalName":
            continue
        backends = [w for w in workloads() if selects(service["spec"]["selector"], w)]
        assert backends, f"Service {name_of(service)} selects no pods"
        for port in service["spec"]["ports"]:
            for w in backends:
                container_port(containers(w)[0], port.get("targetPort", port["port"]))
    budgets = of_kind("PodDisruptionBudget")
    assert budgets
    for budget in budgets:
        matched = [w for w in workloads() if selects(budget["spec"]["selector"]["matchLabels"], w)]
        assert len(matched) == 1, f"PodDisruptionBudget {name_of(budget)} matches {len(matched)}"


def test_autoscaled_deployments_leave_replicas_to_their_autoscaler() -> None:
    scaled = set()
    for hpa in of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        deployment = named(target["kind"], target["name"])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in deployment["spec"], f"{target['name']}: apply would fight it"
        scaled.add(target["name"])
    assert {"clarion-send", "clarion-audience-personalize"} <= scaled
    for deployment in of_kind("Deployment"):
        if name_of(deployment) not in scaled:
            assert deployment["spec"]["replicas"] >= 1, name_of(deployment)
    # the simulator keeps its handsets in memory: two would split them
    assert named("Deployment", "clarion-sim")["spec"]["replicas"] == 1


def test_nats_is_a_jetstream_cluster_with_a_route_to_every_server() -> None:
    statefulset = nats()
    replicas = statefulset["spec"]["replicas"]
    assert replicas >= 3, "a JetStream cluster that survives the loss of a server"
    assert replicas % 2 == 1, "an even count adds no tolerance to the quorum"
    (container,) = containers(statefulset)
    assert "--jetstream" in container["args"]
    conf = nats_conf()
    headless = named("Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True  # peers meet before ready
    cluster = re.search(r"cluster\s*\{(.*?)\n\}", conf, re.DOTALL)
    assert cluster, "no cluster block"
    cluster_port = container_port(container, int(conf_value(cluster.group(1), "port")))
    assert conf_value(cluster.group(1), "name")
    routes = re.search(r"routes:\s*\[(.*?)\]", cluster.group(1), re.DOTALL)
    assert routes, "no routes"
    expected = [
        f"nats://{name_of(statefulset)}-{i}.{name_of(headless)}:{cluster_port}"
        for i in range(replicas)
    ]
    assert routes.group(1).replace(",", " ").split() == expected
    store = conf_value(conf, "store_dir")
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    assert any(
        m["mountPath"] == store and m["name"] in claims for m in container["volumeMounts"]
    ), "the JetStream store is not on the persistent volume"
    monitor = int(conf_value(conf, "http_port"))
    for kind in ("readinessProbe", "livenessProbe"):
        assert container_port(container, container[kind]["httpGet"]["port"]) == monitor
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    budgets = of_kind("PodDisruptionBudget")
    (budget,) = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], statefulset)]
    assert budget["spec"]["maxUnavailable"] <= (replicas - 1) // 2, "a drain could break quorum"


def test_nats_takes_what_the_embedded_server_takes() -> None:
    """Clarion is built and tested against the server it starts on its own, which takes
    payloads up to 8 MB (NATS's default is 1 MB) and acknowledges a publish only once it is on
    disk: the cluster must make the same promises."""
    conf = nats_conf()
    for key in ("max_payload", "sync_interval"):
        assert conf_value(conf, key) == conf_value(embedded._CONFIG, key), key


def test_the_benchs_two_sides_are_the_deployments_send_and_receipts_roles() -> None:
    # `clarion bench --workers N` lays its processes out as deploy/ runs the stages: the
    # send side is what clarion-audience-personalize and clarion-send run, the receipts side
    # what clarion-receipts and clarion-api run.
    from clarion.harness.bench import RECEIPTS_SIDE, SEND_SIDE

    roles = worker_roles()
    send = roles["clarion-audience-personalize"] + roles["clarion-send"]
    receipts = roles["clarion-receipts"] + roles["clarion-api"]
    assert sorted(SEND_SIDE) == sorted(send)
    assert sorted(RECEIPTS_SIDE) == sorted(receipts)


def test_clarion_pods_are_ready_on_every_dependency_and_live_on_their_bus_client() -> None:
    """Readiness checks Postgres and NATS (a database outage takes pods out of the Service);
    liveness does not (it would restart every pod at once for it)."""
    seen = 0
    for _, c in all_containers():
        if image_name(c) != CLARION_IMAGE or cli_options(c["command"])[0] != "worker":
            continue
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        if "startupProbe" in c:
            assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
        seen += 1
    assert seen >= 4
