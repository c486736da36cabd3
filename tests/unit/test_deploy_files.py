"""The deployment files (compose, Dockerfile, Kubernetes, Vector) agree, checked statically."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from reactor.cli.main import HARD_STOP_MARGIN_S
from reactor.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
PREFIX = "REACTOR_"
GRACE_MARGIN_S = 15.0  # grace periods are REACTOR_DRAIN_S + this (README, "Drain")


# ----------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _no_reactor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built from the files alone, whatever REACTOR_* variables the shell has."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def interpolate(value: str) -> str:
    """Resolve compose's ``${VAR:-default}`` to its default (and ``${VAR}`` to nothing)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value)) for key, value in env.items()}


def dependencies(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def duration_s(text: str) -> float:
    """A compose duration such as ``10m30s`` or ``630s`` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def settings_from(env: dict[str, str]) -> Settings:
    """Validate REACTOR_* values the way the reactor would read them."""
    fields = {
        key[len(PREFIX) :].lower(): value for key, value in env.items() if key.startswith(PREFIX)
    }
    return Settings(**fields)


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list)
    return value


def ignore_pattern_matches(pattern: str, path: str) -> bool:
    """A .dockerignore pattern against a slash-separated path (``**/`` matches at any depth)."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if pattern.startswith("**/"):
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return False


def dockerignore_excludes(relative: str) -> bool:
    """Whether ``.dockerignore`` keeps a path out of the build context (last match wins)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # the path or a parent
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        if any(ignore_pattern_matches(body, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def k8s_documents() -> dict[str, dict[str, Any]]:
    """The kustomization's resources by kind."""
    kustomization = load_yaml(K8S / "kustomization.yaml")
    documents: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            documents[document["kind"]] = document
    return documents


def pod_spec() -> dict[str, Any]:
    return k8s_documents()["Deployment"]["spec"]["template"]["spec"]


def reactor_container() -> dict[str, Any]:
    return pod_spec()["containers"][0]


def configmap_data() -> dict[str, str]:
    return k8s_documents()["ConfigMap"]["data"]


def container_port(port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in reactor_container()["ports"]}
    return named[port]


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (``2``, ``500m``, ``2Gi``, ``768Mi``) as a number of base units."""
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(text))
    assert match, text
    return float(match.group(1)) * suffixes.get(match.group(2), 1)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
        plugin = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return info.returncode == 0 and plugin.returncode == 0


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reactor_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------- compose


def test_compose_file_parses_with_the_expected_services() -> None:
    """compose.yaml is YAML with a MongoDB member, the reactor and the optional extras."""
    assert {"mongo1", "mongo2", "mongo3", "reactor", "vector"} <= services().keys()


def test_every_healthy_dependency_has_a_healthcheck() -> None:
    """Each ``depends_on`` names a defined service; ``service_healthy`` one with a check."""
    all_services = services()
    for name, service in all_services.items():
        for target, spec in dependencies(service).items():
            assert target in all_services, f"{name} depends on undefined service {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in all_services[target], f"{name} waits on {target}"


def test_no_service_depends_on_one_its_profiles_can_leave_out() -> None:
    """A dependency is enabled whenever its dependant is: every profile mix is a valid project."""
    all_services = services()
    for name, service in all_services.items():
        for target in dependencies(service):
            needed = set(all_services[target].get("profiles", []))
            mine = set(service.get("profiles", []))
            assert not needed or (mine and needed >= mine), f"{name} -> {target}"


def test_replica_set_members_run_with_repl_set_and_bind_ip_all() -> None:
    """Every MongoDB member is mongo:8 started with ``--replSet rs0 --bind_ip_all``."""
    for name in ("mongo1", "mongo2", "mongo3"):
        service = services()[name]
        assert service["image"] == "mongo:8"
        command = service["command"]
        assert command[command.index("--replSet") + 1] == "rs0"
        assert "--bind_ip_all" in command


def test_replica_set_initiation_covers_each_layout() -> None:
    """mongo1's check initiates a one-member set; the rs3 profile's check adds mongo2 and mongo3."""
    mongo1 = " ".join(services()["mongo1"]["healthcheck"]["test"])
    assert "rs.initiate" in mongo1
    assert "mongo1:27017" in mongo1
    assert "profiles" not in services()["mongo1"]
    for name in ("mongo2", "mongo3"):
        assert services()[name]["profiles"] == ["rs3"]
    grower = " ".join(services()["mongo3"]["healthcheck"]["test"])
    assert "rs.add" in grower
    assert all(f"mongo{i}:27017" in grower for i in (1, 2, 3))


def test_reactor_build_context_and_dockerfile_exist() -> None:
    """The reactor builds from the repository root with deploy/Dockerfile."""
    build = services()["reactor"]["build"]
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


def test_reactor_environment_sets_only_real_settings() -> None:
    """Every REACTOR_* variable of the reactor service is a Settings field with a valid value."""
    env = {k: v for k, v in environment(services()["reactor"]).items() if k.startswith(PREFIX)}
    assert env["REACTOR_MONGO_URI"] == "mongodb://mongo1:27017/?replicaSet=rs0"
    unknown = {key for key in env if key[len(PREFIX) :].lower() not in Settings.model_fields}
    assert not unknown
    assert str(settings_from(env).jobs_root) == "/shared/jobs"


def test_reactor_service_runs_the_way_operators_expect() -> None:
    """Restart policy, jobs volume, port 8080, a health check, and MongoDB healthy first."""
    reactor = services()["reactor"]
    assert reactor["restart"] == "unless-stopped"
    volumes = [interpolate(v) for v in reactor["volumes"]]
    assert any(v.split(":")[1] == "/shared/jobs" for v in volumes)
    named = volumes[0].split(":")[0]
    assert named in compose()["volumes"]
    assert any(interpolate(p).endswith(":8080") for p in reactor["ports"])
    assert reactor["healthcheck"]["test"][:2] == ["CMD", "reactor-healthcheck"]
    assert dependencies(reactor)["mongo1"]["condition"] == "service_healthy"


def test_reactor_stop_grace_period_is_the_fixed_drain_plus_the_margin() -> None:
    """stop_grace_period is REACTOR_DRAIN_S + 15 s, past the hard stop, and the drain is not
    taken from the shell (compose could not move the grace period with it)."""
    reactor = services()["reactor"]
    raw = str(reactor["environment"]["REACTOR_DRAIN_S"])
    assert "$" not in raw, "REACTOR_DRAIN_S must be fixed: stop_grace_period depends on it"
    drain_s = settings_from(environment(reactor)).drain_s
    grace_s = duration_s(reactor["stop_grace_period"])
    assert grace_s == drain_s + GRACE_MARGIN_S
    assert grace_s > drain_s + HARD_STOP_MARGIN_S
    assert_comment_agrees(COMPOSE_FILE, "stop_grace_period:", {"REACTOR_DRAIN_S": drain_s})


def test_reactor_logs_rotate_and_carry_shipping_labels() -> None:
    """json-file logging with rotation, and the labels Vector selects containers by."""
    reactor = services()["reactor"]
    logging = reactor["logging"]
    assert logging["driver"] == "json-file"
    assert {"max-size", "max-file"} <= logging["options"].keys()
    for label in logging["options"]["labels"].split(","):
        assert label in reactor["labels"]


def test_vector_service_is_optional_and_mounts_the_shipped_config() -> None:
    """Vector runs only with the ``logs`` profile and reads deploy/vector.yaml."""
    vector = services()["vector"]
    assert vector["profiles"] == ["logs"]
    sources = [v.split(":")[0] for v in vector["volumes"]]
    assert "./vector.yaml" in sources
    assert (COMPOSE_FILE.parent / "vector.yaml").is_file()


@pytest.mark.skipif(
    not docker_engine_answers(),
    reason="no Docker engine answers `docker info` (or no `docker compose` plugin): "
    "compose's own validation cannot run here",
)
@pytest.mark.parametrize("profiles", [[], ["rs3"], ["rs3", "logs"]])
def test_docker_compose_validates_the_file(profiles: list[str]) -> None:
    """``docker compose config -q`` accepts the file with each combination of profiles."""
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), *flags, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def published(service: dict[str, Any]) -> list[str]:
    """A service's ``ports`` entries with compose's defaults filled in."""
    return [interpolate(str(port)) for port in service.get("ports", [])]


def test_every_published_port_binds_to_localhost_by_default() -> None:
    """Compose publishes MongoDB and the reactor's endpoints on 127.0.0.1 unless told otherwise."""
    for name, service in services().items():
        for port in published(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert published(services()["reactor"]) == ["127.0.0.1:8080:8080"]


def test_the_reactor_address_and_jobs_directory_can_be_opened_up() -> None:
    """REACTOR_HOST_ADDRESS and JOBS_VOLUME are the documented ways to widen the defaults."""
    reactor = services()["reactor"]
    assert reactor["ports"][0].startswith("${REACTOR_HOST_ADDRESS:-127.0.0.1}:")
    assert reactor["volumes"][0] == "${JOBS_VOLUME:-jobs}:/shared/jobs"
    docs = (ROOT / "docs" / "operations.md").read_text()
    for variable in ("REACTOR_HOST_ADDRESS", "JOBS_VOLUME"):
        assert variable in docs
        assert variable in COMPOSE_FILE.read_text()


def test_handler_modules_have_a_mount_point_in_compose_and_the_image() -> None:
    """./handlers is mounted read-only at /opt/reactor-handlers, which the image creates."""
    reactor = services()["reactor"]
    assert "./handlers:/opt/reactor-handlers:ro" in reactor["volumes"]
    assert (DEPLOY / "handlers").is_dir()
    assert "REACTOR_HANDLER_MODULES" in environment(reactor)
    assert settings_from(environment(reactor)).handler_module_list == []
    runtime = final_stage(dockerfile_instructions())
    runs = " ".join(a for keyword, a in runtime if keyword == "RUN")
    assert "/opt/reactor-handlers" in runs
    assert "REACTOR_HANDLER_MODULES=/opt/reactor-handlers/app.py" in DOCKERFILE.read_text()


# -------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage_on_slim_bookworm() -> None:
    """A builder stage and a runtime stage, both from python:3.11-slim-bookworm by default."""
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[-1].endswith("AS runtime")
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    assert any(
        args.startswith("--from=builder") for k, args in final_stage(instructions) if k == "COPY"
    )


def test_dockerfile_copies_only_paths_that_exist_in_the_context() -> None:
    """Every COPY source exists in the repository and .dockerignore lets it through."""
    sources = []
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), f".dockerignore excludes {source}"


def test_dockerignore_keeps_out_what_the_image_does_not_need() -> None:
    """Tests, the virtualenv, git history and bytecode stay out of the build context."""
    for path in (".git", ".venv", "tests", "docs", "reactor/__pycache__/config.cpython-311.pyc"):
        assert dockerignore_excludes(path), path


def test_dockerfile_installs_tini_and_runs_the_reactor_under_it() -> None:
    """tini from Debian is PID 1, with ``reactor run`` as the default command."""
    runtime = final_stage(dockerfile_instructions())
    installs = " ".join(args for keyword, args in runtime if keyword == "RUN")
    assert re.search(r"apt-get install .*\btini\b", installs)
    assert re.search(r"apt-get install .*\btzdata\b", installs)
    assert re.search(r"apt-get install .*\btesseract-ocr\b", installs)
    entrypoint = [exec_form(args) for keyword, args in runtime if keyword == "ENTRYPOINT"]
    assert entrypoint == [["tini", "--", "reactor"]]
    assert [exec_form(args) for keyword, args in runtime if keyword == "CMD"] == [["run"]]


def test_dockerfile_healthcheck_asks_healthz() -> None:
    """The HEALTHCHECK runs a script, shipped in the image, that requests /healthz."""
    runtime = final_stage(dockerfile_instructions())
    checks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    command = exec_form(checks[0].split("CMD", 1)[1].strip())
    installed = {
        shlex.split(args)[-1]: shlex.split(args)[0]
        for keyword, args in runtime
        if keyword == "COPY" and not args.startswith("--from")
    }
    script = next(source for target, source in installed.items() if target.endswith(command[0]))
    assert "/healthz" in (ROOT / script).read_text()


def test_dockerfile_runs_as_a_non_root_user_that_owns_the_jobs_dir() -> None:
    """ARG UID/GID create the user, who owns /shared/jobs, and USER switches to it."""
    runtime = final_stage(dockerfile_instructions())
    args = {a.split("=")[0] for keyword, a in runtime if keyword == "ARG"}
    assert {"UID", "GID", "TESSERACT_LANGS"} <= args
    users = [a for keyword, a in runtime if keyword == "USER"]
    assert users
    assert users[-1] not in {"root", "0", "0:0"}
    assert users[-1] == "${UID}:${GID}"
    runs = " ".join(a for keyword, a in runtime if keyword == "RUN")
    assert 'chown -R "${UID}:${GID}" /shared' in runs


def test_dockerfile_environment_ports_and_labels() -> None:
    """Jobs root, TZ, port 8080 and the OCI labels are declared."""
    text = DOCKERFILE.read_text()
    runtime = final_stage(dockerfile_instructions())
    env = " ".join(a for keyword, a in runtime if keyword == "ENV")
    assert "REACTOR_JOBS_ROOT=/shared/jobs" in env
    assert "TZ=UTC" in env
    assert ("EXPOSE", "8080") in runtime
    for label in ("title", "version", "revision", "created", "licenses", "description"):
        assert f"org.opencontainers.image.{label}=" in text


def test_package_lists_ship_without_entries() -> None:
    """deploy/packages.txt and deploy/requirements.txt hold only comments and blank lines."""
    for name in ("packages.txt", "requirements.txt"):
        for line in (DEPLOY / name).read_text().splitlines():
            assert not line.strip() or line.lstrip().startswith("#"), f"{name}: {line}"


@pytest.mark.skipif(shutil.which("awk") is None, reason="awk is not installed")
def test_dockerfile_package_filter_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    """The Dockerfile's awk filter turns packages.txt into bare package names."""
    program = re.search(r"awk '([^']*)' /tmp/packages.txt", DOCKERFILE.read_text())
    assert program is not None
    sample = tmp_path / "packages.txt"
    sample.write_text("# heading\n\npoppler-utils   # pdftoppm\n  fonts-dejavu-core ghostscript\n")
    result = subprocess.run(
        ["awk", program.group(1), str(sample)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["poppler-utils", "fonts-dejavu-core", "ghostscript"]


@pytest.mark.skipif(shutil.which("grep") is None, reason="grep is not installed")
def test_dockerfile_skips_a_requirements_file_of_comments() -> None:
    """The Dockerfile's grep finds no entry in the shipped requirements.txt, one in a real list."""
    pattern = re.search(r"grep -Eq '([^']*)' /tmp/requirements.txt", DOCKERFILE.read_text())
    assert pattern is not None
    shipped = subprocess.run(
        ["grep", "-Eq", pattern.group(1), str(DEPLOY / "requirements.txt")], check=False
    )
    assert shipped.returncode == 1
    entry = subprocess.run(["grep", "-Eq", pattern.group(1)], input=b"# x\n  pkg==1\n", check=False)
    assert entry.returncode == 0


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8080/healthz"),
        ({"REACTOR_HTTP_PORT": "9000", "REACTOR_HTTP_HOST": "::"}, "http://127.0.0.1:9000/healthz"),
        ({"REACTOR_HTTP_HOST": "::1"}, "http://[::1]:8080/healthz"),
        ({"REACTOR_HTTP_PORT": "0"}, None),
    ],
)
def test_healthcheck_script_follows_the_http_settings(env: dict[str, str], url: str | None) -> None:
    """The image's health check asks the address and port the reactor listens on."""
    assert load_healthcheck().healthz_url(env) == url


# -------------------------------------------------------------------------------- Kubernetes


def test_k8s_manifests_parse_and_are_namespace_agnostic() -> None:
    """Every manifest is YAML with kind and name, and none pins a namespace."""
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            assert "namespace" not in load_yaml(path)
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"], path.name
            assert document["metadata"]["name"], path.name
            assert "namespace" not in document["metadata"], path.name


def test_kustomization_lists_the_expected_resources() -> None:
    """Deployment, Service, PDB, HPA and ConfigMap are all in the kustomization."""
    kinds = set(k8s_documents())
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
    } <= kinds


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_directory() -> None:
    """``kubectl kustomize`` renders the directory without errors."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout


def test_probes_use_the_endpoints_on_the_configured_port() -> None:
    """Readiness asks /readyz and liveness /healthz on the ConfigMap's REACTOR_HTTP_PORT."""
    port = int(configmap_data()["REACTOR_HTTP_PORT"])
    container = reactor_container()
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    assert container_port(readiness["port"]) == port
    assert container_port(liveness["port"]) == port


def test_termination_grace_period_is_the_drain_plus_the_margin() -> None:
    """terminationGracePeriodSeconds is REACTOR_DRAIN_S + 15 s, past the hard stop, and the
    comments beside it and in the ConfigMap say so with the real numbers."""
    drain_s = settings_from(configmap_data()).drain_s
    grace_s = pod_spec()["terminationGracePeriodSeconds"]
    assert grace_s == drain_s + GRACE_MARGIN_S
    assert grace_s > drain_s + HARD_STOP_MARGIN_S
    assert_comment_agrees(
        K8S / "deployment.yaml", "terminationGracePeriodSeconds:", {"REACTOR_DRAIN_S": drain_s}
    )
    assert_comment_agrees(K8S / "configmap.yaml", "REACTOR_DRAIN_S:", {"REACTOR_DRAIN_S": drain_s})


def comment_before(path: Path, key: str) -> str:
    """The comment lines right above the line holding ``key``, and that line's own comment."""
    lines = path.read_text().splitlines()
    [at] = [i for i, line in enumerate(lines) if line.strip().startswith(key)]
    start = at
    while start > 0 and lines[start - 1].strip().startswith("#"):
        start -= 1
    block = [line.strip().lstrip("#").strip() for line in lines[start:at]]
    inline = lines[at].partition("#")[2].strip()
    return " ".join([*block, inline])


def assert_comment_agrees(path: Path, key: str, values: dict[str, float]) -> None:
    """The comment on ``key`` names only these settings, quotes their values right, and gives
    the margin as "+ 15 s" (it once explained the grace with other settings entirely)."""
    text = comment_before(path, key)
    named = set(re.findall(r"REACTOR_[A-Z_]+", text))
    assert named == set(values), (path.name, named)
    for name, number in re.findall(r"(REACTOR_[A-Z_]+) \((\d+(?:\.\d+)?)\)", text):
        assert float(number) == values[name], (path.name, name, number)
    margins = {float(n) for n in re.findall(r"(?:\+|plus) (\d+) s\b", text)}
    assert margins == {GRACE_MARGIN_S}, (path.name, text)


def test_configmap_sets_only_real_settings_with_valid_values() -> None:
    """Every ConfigMap key is a REACTOR_* Settings field and the values validate."""
    data = configmap_data()
    assert all(key.startswith(PREFIX) for key in data)
    settings = settings_from(data)
    assert settings.http_port == int(data["REACTOR_HTTP_PORT"])


def test_deployment_reads_the_configmap_and_the_mongo_secret() -> None:
    """envFrom names the ConfigMap and a Secret whose example carries REACTOR_MONGO_URI."""
    sources = reactor_container()["envFrom"]
    configmaps = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
    secrets = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
    assert configmaps == [k8s_documents()["ConfigMap"]["metadata"]["name"]]
    example = load_yaml(K8S / "secret.example.yaml")
    assert secrets == [example["metadata"]["name"]]
    assert "REACTOR_MONGO_URI" in example["stringData"]
    assert "REACTOR_MONGO_URI" not in configmap_data()


def test_deployment_resources_fit_the_pool() -> None:
    """The CPU limit equals cpu_workers and the memory limit holds every pool worker's ceiling."""
    settings = settings_from(configmap_data())
    limits = reactor_container()["resources"]["limits"]
    assert quantity(limits["cpu"]) == settings.cpu_workers
    assert quantity(limits["memory"]) > settings.cpu_workers * settings.pool_max_rss_mb * 2**20


def test_operations_guide_puts_the_shared_volume_first() -> None:
    """docs/operations.md says ReadWriteMany before its first section on running anything."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    first_section = docs.index("\n## ")
    assert docs.index("ReadWriteMany") < docs.index("## Quickstart")
    assert "ReadWriteMany" in docs[first_section : docs.index("## Quickstart")]


def test_deployment_mounts_the_jobs_dir_and_runs_as_the_image_user() -> None:
    """/shared/jobs is a volume, and the pod runs as non-root with the image's UID."""
    spec = pod_spec()
    mounts = {m["mountPath"]: m["name"] for m in reactor_container()["volumeMounts"]}
    assert mounts["/shared/jobs"] in {v["name"] for v in spec["volumes"]}
    assert spec["securityContext"]["runAsNonRoot"] is True
    uid = re.search(r"ARG UID=(\d+)", DOCKERFILE.read_text())
    assert uid is not None
    assert spec["securityContext"]["runAsUser"] == int(uid.group(1))


def test_service_pdb_and_hpa_point_at_the_deployment() -> None:
    """Selectors match the pod labels, the metrics port resolves, the HPA scales the Deployment."""
    documents = k8s_documents()
    deployment = documents["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = documents["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert container_port(service["ports"][0]["targetPort"]) == int(
        configmap_data()["REACTOR_HTTP_PORT"]
    )
    pdb = documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= labels.items()
    target = documents["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "reactor_jobs_queued" in (K8S / "hpa.yaml").read_text()


# ------------------------------------------------------------------------------------ Vector


def test_vector_config_parses_and_its_graph_is_connected() -> None:
    """Every transform and sink reads from a defined source or transform."""
    config = load_yaml(DEPLOY / "vector.yaml")
    components = set(config["sources"]) | set(config.get("transforms", {}))
    for section in ("transforms", "sinks"):
        for name, component in config[section].items():
            assert component["inputs"], name
            assert set(component["inputs"]) <= components, name


def test_vector_selects_the_containers_compose_labels() -> None:
    """The docker_logs source's label filter matches the reactor service's labels."""
    source = load_yaml(DEPLOY / "vector.yaml")["sources"]["reactor_docker"]
    assert source["type"] == "docker_logs"
    labels = services()["reactor"]["labels"]
    for selector in source["include_labels"]:
        key, _, value = selector.partition("=")
        assert labels[key] == value
