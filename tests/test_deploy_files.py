"""Checks of the deployment files: Dockerfile, docker-compose.yml, .dockerignore,
docker/*. No Docker engine is needed (none runs in CI); these tests read the
files, cross-check them against the project (settings.py, the job kinds, the
queues the code sends to), and run the shell scripts with stand-in programs.

What only a real `docker compose up` shows (image builds, the NVIDIA runtime,
healthchecks passing) is not covered here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_DIR = ROOT / "docker"
ENTRYPOINT = DOCKER_DIR / "entrypoint.sh"
BOOTSTRAP = DOCKER_DIR / "bootstrap.py"
INSTALL_REQUIREMENTS = DOCKER_DIR / "install-requirements.sh"
ENV_EXAMPLE = DOCKER_DIR / "env.example"
SETTINGS_FILE = ROOT / "biofm_site" / "settings.py"

SERVICES = {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "beat", "mailpit"}
APP_SERVICES = ("web", "worker-cpu", "worker-gpu", "beat")
WORKERS = ("worker-cpu", "worker-gpu")
# The services that read and write result files (beat only sends a schedule).
MEDIA_SERVICES = ("web", *WORKERS)
# Prefixes of the variables this project reads: a compose variable with one of
# them that settings.py does not read is a typo or a leftover.
PROJECT_PREFIXES = ("DJANGO_", "BIOFM_", "EMAIL_", "DATABASE_", "REDIS_", "CELERY_", "DEFAULT_FROM_EMAIL")
# Read by Python, Django or libraries, not by the project.
PLATFORM_ENV = {"DJANGO_SETTINGS_MODULE", "TORCH_HOME", "REMAP_SIGTERM"}

BASH = shutil.which("bash") or "/bin/bash"


# --- Helpers --------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def _env_names_read_in_python(path: Path) -> set[str]:
    """Names passed to os.environ.get / os.getenv / os.environ[...] / env_*()."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in {"os.environ.get", "os.getenv", "os.environ.setdefault"} or re.fullmatch(r"env_\w+", func):
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
    return names


def _env_names_read_in_shell(path: Path) -> set[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))


def settings_env_names() -> set[str]:
    return _env_names_read_in_python(SETTINGS_FILE)


def script_env_names() -> set[str]:
    names = _env_names_read_in_shell(ENTRYPOINT)
    for path in DOCKER_DIR.glob("*.py"):
        names |= _env_names_read_in_python(path)
    return names


_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)|(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolated_names(text: str) -> set[str]:
    return {a or b for a, b in _VAR.findall(text)}


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation of one value, enough for ${X}, ${X:-d}, ${X-d}, ${X:?e}, $$."""
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            empty = current is None or (op == ":-" and current == "")
            return arg if empty else current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise LookupError(f"{name}: {arg}")
            return current
        return current or ""

    pattern = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}")
    return pattern.sub(replace, value)


def service_env(compose: dict, name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = compose["services"][name].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    env = {"DJANGO_SECRET_KEY": "test-secret"} if env is None else env
    return {key: str(interpolate(value, env)) for key, value in raw.items()}


def command_list(service: dict) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def option(args: list[str], *flags: str) -> str | None:
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if flag.startswith("--") and arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def worker_queues(service: dict) -> set[str]:
    args = command_list(service)
    queues = option(args, "-Q", "--queues")
    assert queues, f"a worker must name its queues with -Q: {args}"
    return {q.strip() for q in queues.split(",") if q.strip()}


def duration_seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", str(value))
    assert parts and "".join(n + u for n, u in parts) == str(value).strip(), f"bad duration {value!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * scale[u] for n, u in parts)


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes, short or long syntax."""
    mounts = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
        else:
            source, target = entry.get("source"), entry["target"]
        mounts[target] = source
    return mounts


def dockerfile_stages() -> list[dict]:
    """The Dockerfile as stages: {"from": image, "name": alias, "lines": [instructions]}."""
    text = DOCKERFILE.read_text()
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append((current + stripped).strip())
        current = ""
    stages: list[dict] = []
    for instruction in logical:
        word = instruction.split(None, 1)[0].upper()
        if word == "FROM":
            parts = instruction.split()
            name = parts[3] if len(parts) >= 4 and parts[2].upper() == "AS" else None
            stages.append({"from": parts[1], "name": name, "lines": []})
        elif stages:
            stages[-1]["lines"].append(instruction)
    return stages


def dockerfile_args() -> dict[str, str]:
    """Global ARG defaults (before the first FROM), to expand ${PYTHON_VERSION} in FROM lines."""
    args = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().upper().startswith("FROM"):
            break
        match = re.match(r"\s*ARG\s+(\w+)(?:=(\S*))?", line)
        if match:
            args[match.group(1)] = (match.group(2) or "").strip('"')
    return args


def stage_env(stage: dict) -> dict[str, str]:
    env = {}
    for line in stage["lines"]:
        if line.upper().startswith("ENV "):
            for item in shlex.split(line[4:]):
                if "=" in item:
                    key, value = item.split("=", 1)
                    env[key] = value
    return env


def stage_copies_from(stage: dict, source_stage: str) -> list[tuple[str, str]]:
    copies = []
    for line in stage["lines"]:
        parts = shlex.split(line)
        if parts[0].upper() == "COPY" and f"--from={source_stage}" in parts:
            paths = [p for p in parts[1:] if not p.startswith("--")]
            for src in paths[:-1]:
                copies.append((src, paths[-1]))
    return copies


def expand(image: str) -> str:
    args = dockerfile_args()
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)


def node_dirs_served_by_settings() -> list[str]:
    """Paths under NODE_MODULES that STATICFILES_DIRS serves (e.g. htmx.org/dist)."""
    node_modules = Path(django_settings.NODE_MODULES)
    found = []
    for entry in django_settings.STATICFILES_DIRS:
        path = Path(entry[1] if isinstance(entry, (tuple, list)) else entry)
        try:
            found.append(path.relative_to(node_modules).as_posix())
        except ValueError:
            continue
    assert found, "settings.STATICFILES_DIRS serves nothing from node_modules?"
    return found


# --- docker-compose.yml: services ----------------------------------------

def test_the_seven_services_exist(compose):
    assert set(compose["services"]) == SERVICES


def test_backing_services_images_persistence_and_healthchecks(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["mailpit"]["image"].split(":")[0] == "axllent/mailpit"
    redis_command = command_list(services["redis"])
    assert "--appendonly" in redis_command and option(redis_command, "--appendonly") == "yes", redis_command
    named = set(compose.get("volumes") or {})
    assert volume_mounts(services["postgres"]).get("/var/lib/postgresql/data") in named
    assert volume_mounts(services["redis"]).get("/data") in named, "the append-only file must outlive the container"
    for name in ("postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} needs a healthcheck"


def test_mailpit_catches_the_portal_mail(compose):
    mailpit = compose["services"]["mailpit"]
    ports = " ".join(str(p) for p in mailpit.get("ports", []))
    assert ":8025" in ports, "the mailpit web UI is published on 8025"
    env = service_env(compose, "web")
    assert env["EMAIL_HOST"] == "mailpit" and env["EMAIL_PORT"] == "1025"


def test_cpu_worker_consumes_cpu_and_notify(compose):
    service = compose["services"]["worker-cpu"]
    args = command_list(service)
    assert args[0] == "worker"
    assert worker_queues(service) == {"cpu", "notify"}
    assert option(args, "--concurrency", "-c") == "${CPU_WORKER_CONCURRENCY:-2}"
    assert option(args, "-n", "--hostname") == "cpu@%h"
    assert "deploy" not in service, "the cpu worker reserves no GPU"


def test_gpu_worker_consumes_only_gpu_and_reserves_an_nvidia_gpu(compose):
    service = compose["services"]["worker-gpu"]
    args = command_list(service)
    assert args[0] == "worker"
    assert worker_queues(service) == {"gpu"}
    assert option(args, "--concurrency", "-c") == "1"
    assert option(args, "-n", "--hostname") == "gpu@%h"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    device = devices[0]
    assert device["driver"] == "nvidia"
    assert device["count"] == 1
    assert "gpu" in device["capabilities"]
    for name in SERVICES - {"worker-gpu"}:
        assert "deploy" not in compose["services"][name], f"{name} must not reserve devices"


def test_every_queue_the_code_sends_to_has_a_worker(compose):
    from workers import kinds

    sent_to = set(kinds.QUEUES) | {kind.queue for kind in kinds.all_kinds()}
    for path in ROOT.glob("*/*.py"):
        if path.parts[len(ROOT.parts)] in {".venv", "tests", "node_modules"}:
            continue
        sent_to |= set(re.findall(r"""\bqueue\s*=\s*["']([\w.-]+)["']""", path.read_text()))
    assert "notify" in sent_to, "expected the notify queue (emails) among the queues the code uses"
    consumed = set().union(*(worker_queues(compose["services"][w]) for w in WORKERS))
    assert sent_to <= consumed, f"no worker consumes {sorted(sent_to - consumed)}"


def test_one_beat_sends_the_schedule_to_queues_a_worker_consumes(compose):
    services = compose["services"]
    beat = services["beat"]
    args = command_list(beat)
    assert args[:4] == ["celery", "-A", "biofm_site", "beat"], args
    # The same image as web and the cpu worker: the same settings and schedule.
    assert beat["build"] == services["web"]["build"] and beat["image"] == services["web"]["image"]
    # One instance: a second beat would send every entry twice.
    assert beat.get("scale", 1) == 1 and "deploy" not in beat
    runs_beat = [name for name, service in services.items()
                 if "beat" in command_list(service) or {"-B", "--beat"} & set(command_list(service))]
    assert runs_beat == ["beat"], runs_beat
    consumed = set().union(*(worker_queues(services[w]) for w in WORKERS))
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert "reconcile-jobs" in schedule
    for name, entry in schedule.items():
        assert entry["options"]["queue"] in consumed, f"no worker consumes the queue of beat entry {name}"
    # The schedule file lies in BIOFM_VAR_DIR, which the image creates for the app user.
    var_dir = service_env(compose, "beat")["BIOFM_VAR_DIR"]
    run_lines = " ".join(line for line in dockerfile_stages()[-1]["lines"] if line.upper().startswith("RUN "))
    assert re.search(rf"mkdir -p [^&]*{re.escape(var_dir)}(\s|$)", run_lines), var_dir
    assert django_settings.CELERY_BEAT_SCHEDULE_FILENAME.startswith(str(django_settings.VAR_DIR))


def test_workers_names_are_distinct(compose):
    names = [option(command_list(compose["services"][w]), "-n", "--hostname") for w in WORKERS]
    assert len(set(names)) == len(names)


# --- docker-compose.yml: images -------------------------------------------

def test_gpu_worker_is_built_from_the_same_dockerfile_with_a_cuda_torch_index(compose):
    services = compose["services"]
    web_build, gpu_build = services["web"]["build"], services["worker-gpu"]["build"]
    for build in (web_build, gpu_build, services["worker-cpu"]["build"]):
        assert build.get("context", ".") in (".", "./")
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    gpu_index = interpolate(gpu_build["args"]["TORCH_INDEX_URL"], {})
    assert re.search(r"/whl/cu\d+$", gpu_index), gpu_index
    cpu_index = interpolate((web_build.get("args") or {}).get("TORCH_INDEX_URL", ""), {})
    assert "/cu" not in cpu_index, "web and the cpu worker need no CUDA build"
    assert services["worker-cpu"]["build"] == web_build
    # Two builds under one tag would overwrite each other.
    assert services["worker-gpu"]["image"] != services["web"]["image"]
    assert services["worker-cpu"]["image"] == services["web"]["image"]


# --- docker-compose.yml: environment --------------------------------------

def test_settings_parser_finds_the_settings_env_vars():
    names = settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "BIOFM_MEDIA_ROOT", "EMAIL_HOST"} <= names


def test_every_env_var_compose_sets_is_read_by_the_project(compose):
    readable = settings_env_names() | script_env_names() | PLATFORM_ENV
    for name in APP_SERVICES:
        unknown = set(service_env(compose, name)) - readable
        assert not unknown, f"{name} sets {sorted(unknown)}, which neither settings.py nor docker/ reads (typo?)"


def test_every_project_variable_compose_interpolates_is_read_by_the_project():
    readable = settings_env_names() | script_env_names()
    used = {n for n in interpolated_names(COMPOSE_FILE.read_text()) if n.startswith(PROJECT_PREFIXES)}
    assert not used - readable, f"compose interpolates {sorted(used - readable)}, which the project never reads"


def test_dockerfile_env_is_read_by_the_project():
    readable = settings_env_names() | script_env_names()
    env = stage_env(dockerfile_stages()[-1])
    ours = {n for n in env if n.startswith(PROJECT_PREFIXES)} - PLATFORM_ENV
    assert not ours - readable, f"the Dockerfile sets {sorted(ours - readable)}, which the project never reads"


def test_env_example_documents_exactly_the_compose_variables():
    documented = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            documented.add(line.split("=", 1)[0].strip())
    used = interpolated_names(COMPOSE_FILE.read_text())
    assert documented == used, (
        f"undocumented: {sorted(used - documented)}; documented but unused: {sorted(documented - used)}")


def test_production_environment(compose):
    with pytest.raises(LookupError, match="set DJANGO_SECRET_KEY"):
        service_env(compose, "web", env={})
    for name in APP_SERVICES:
        raw = compose["services"][name]["environment"]["DJANGO_SECRET_KEY"]
        assert raw.startswith("${DJANGO_SECRET_KEY:?"), f"{name}: DJANGO_SECRET_KEY must be required"
    env = service_env(compose, "web")
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["BIOFM_SITE_URL"] == "http://localhost:8000"
    assert env["BIOFM_MANIFEST_STATIC"] == "1"
    assert env.get("DJANGO_DEBUG", "0") in {"0", "false", "False", ""}
    assert env["EMAIL_HOST"] == "mailpit" and env["EMAIL_PORT"] == "1025"
    postgres = service_env(compose, "postgres")
    db = env["DATABASE_URL"]
    assert db == f"postgres://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"


def test_web_and_workers_share_their_settings(compose):
    envs = {name: service_env(compose, name) for name in APP_SERVICES}
    for key in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BIOFM_MEDIA_ROOT", "BIOFM_SITE_URL",
                "EMAIL_HOST", "EMAIL_PORT", "DEFAULT_FROM_EMAIL", "BIOFM_S3_BUCKET", "BIOFM_MANIFEST_STATIC"):
        values = {name: env.get(key) for name, env in envs.items()}
        assert len(set(values.values())) == 1, f"{key} differs: {values}"


def test_web_and_workers_share_the_media_volume_at_media_root(compose):
    sources, targets = set(), set()
    for name in MEDIA_SERVICES:
        media_root = service_env(compose, name)["BIOFM_MEDIA_ROOT"]
        mounts = volume_mounts(compose["services"][name])
        assert media_root in mounts, f"{name} does not mount a volume at BIOFM_MEDIA_ROOT={media_root}"
        sources.add(mounts[media_root])
        targets.add(media_root)
    assert len(sources) == 1 and len(targets) == 1, (sources, targets)
    assert sources.pop() in (compose.get("volumes") or {}), "the media volume must be a named volume"


# --- docker-compose.yml: start order and shutdown -------------------------

def test_only_web_migrates(compose):
    roles = {name: command_list(compose["services"][name])[:1] for name in APP_SERVICES}
    assert roles == {"web": ["web"], "worker-cpu": ["worker"], "worker-gpu": ["worker"], "beat": ["celery"]}
    for name, service in compose["services"].items():
        if name != "web":
            assert "migrate" not in command_list(service) and "web" not in command_list(service)[:1]


def test_start_order(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        # beat only publishes to Redis; the workers run what it sends.
        for backing in ("redis",) if name == "beat" else ("postgres", "redis"):
            assert depends[backing]["condition"] == "service_healthy", f"{name} -> {backing}"
    # Web migrates before serving: healthy only once it answers, after its start period.
    assert services["web"]["healthcheck"]["test"]
    assert duration_seconds(services["web"]["healthcheck"]["start_period"]) >= 60


def test_workers_shut_down_softly_within_the_grace_period(compose):
    """SIGTERM is remapped to Celery's soft shutdown: running jobs get the soft
    shutdown timeout, then go back to the queue (tested on a real worker in
    test_worker_lifecycle.py). Docker's SIGKILL must come only after that."""
    env = compose["x-app-env"]
    assert env["REMAP_SIGTERM"] == "SIGQUIT"
    default = re.fullmatch(r"\$\{\w+:-(\d+)\}", str(env["BIOFM_WORKER_SOFT_SHUTDOWN_TIMEOUT"]))
    timeout = float(default.group(1))
    for name in WORKERS:
        service = compose["services"][name]
        assert service["environment"]["REMAP_SIGTERM"] == "SIGQUIT", name
        grace = duration_seconds(service.get("stop_grace_period", "10s"))
        assert grace >= timeout + 30, f"{name}: stop_grace_period {grace:.0f} s < soft shutdown {timeout:.0f} s + 30 s"


# --- Dockerfile -----------------------------------------------------------

def test_dockerfile_stages():
    stages = dockerfile_stages()
    node = [s for s in stages if expand(s["from"]).startswith("node:")]
    assert len(node) == 1 and node[0]["name"], "one named node stage"
    node_text = "\n".join(node[0]["lines"])
    copy_line = next(line for line in node[0]["lines"] if line.upper().startswith("COPY"))
    assert "package.json" in copy_line and "package-lock.json" in copy_line
    assert re.search(r"npm ci\b.*--omit=dev", node_text)
    python_stages = [s for s in stages if expand(s["from"]) == "python:3.11-slim"]
    assert len(python_stages) >= 2, "dependencies are installed in a python:3.11-slim stage"
    assert stages[-1] in python_stages, "the final stage is python:3.11-slim"


def test_dockerfile_final_stage_runtime():
    final = dockerfile_stages()[-1]
    env = stage_env(final)
    assert env.get("PYTHONUNBUFFERED") == "1"
    users = [line.split(None, 1)[1] for line in final["lines"] if line.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0", "0:0"}, "the image runs as a non-root user"
    entry = next(line for line in final["lines"] if line.upper().startswith("ENTRYPOINT"))
    assert "docker/entrypoint.sh" in entry
    cmd = next(line for line in final["lines"] if line.upper().startswith("CMD"))
    assert json.loads(cmd.split(None, 1)[1]) == ["web"]


def test_dockerfile_puts_node_modules_where_settings_look(compose):
    stages = dockerfile_stages()
    node_stage = next(s for s in stages if expand(s["from"]).startswith("node:"))
    final = stages[-1]
    node_modules = stage_env(final).get("BIOFM_NODE_MODULES")
    workdir = [line.split(None, 1)[1] for line in final["lines"] if line.upper().startswith("WORKDIR")]
    if node_modules is None:
        # Without BIOFM_NODE_MODULES, settings use BASE_DIR/node_modules.
        node_modules = f"{workdir[-1].rstrip('/')}/node_modules"
    copies = stage_copies_from(final, node_stage["name"])
    for rel in node_dirs_served_by_settings():
        wanted = f"{node_modules.rstrip('/')}/{rel}"
        matching = [src for src, dest in copies if dest.rstrip("/") == wanted]
        assert matching, f"the final stage does not copy node_modules/{rel} to {wanted}"
        source = matching[0].rstrip("/")
        # The folder itself, or one file of it (3Dmol's minified bundle alone).
        assert source.endswith(f"node_modules/{rel}") or source.rsplit("/", 1)[0].endswith(f"node_modules/{rel}")
    for name in APP_SERVICES:
        compose_value = service_env(compose, name).get("BIOFM_NODE_MODULES")
        assert compose_value in (None, node_modules), f"{name} points BIOFM_NODE_MODULES elsewhere"


def test_dockerfile_media_root_matches_compose(compose):
    env = stage_env(dockerfile_stages()[-1])
    for name in APP_SERVICES:
        assert service_env(compose, name)["BIOFM_MEDIA_ROOT"] == env["BIOFM_MEDIA_ROOT"]


def test_app_volumes_are_created_in_the_image_for_the_app_user(compose):
    """An empty named volume takes the owner of the image's folder it is mounted
    on; a folder the image lacks would come up owned by root, unwritable."""
    final = dockerfile_stages()[-1]
    run_lines = " ".join(line for line in final["lines"] if line.upper().startswith("RUN "))
    for name in APP_SERVICES:
        for target, source in volume_mounts(compose["services"][name]).items():
            if source in (compose.get("volumes") or {}):
                assert re.search(rf"mkdir -p [^&]*{re.escape(target)}(\s|$)", run_lines), (
                    f"{name}: the Dockerfile does not create {target}")
    assert "chown -R biofm:biofm /srv/biofm" in run_lines


def test_dockerfile_torch_index_build_arg():
    deps_stage = next(s for s in dockerfile_stages() if any("requirements.txt" in line for line in s["lines"]))
    text = "\n".join(deps_stage["lines"])
    assert re.search(r"^ARG TORCH_INDEX_URL\b", text, re.M), "TORCH_INDEX_URL is a build arg of the deps stage"
    assert "install-requirements.sh" in text
    header = DOCKERFILE.read_text().split("FROM", 1)[0]
    assert "TORCH_INDEX_URL" in header, "the build arg is documented at the top of the Dockerfile"


def _fake_pip(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "pip.log"
    bin_dir.mkdir()
    pip = bin_dir / "pip"
    pip.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
    pip.chmod(0o755)
    return bin_dir, log


@pytest.mark.parametrize("line, expected", [
    ("torch==2.13.0  # the CPU wheel in CI", "torch==2.13.0"),
    (None, "torch"),
])
def test_install_requirements_takes_torch_from_the_index_first(tmp_path, line, expected):
    bin_dir, log = _fake_pip(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Django>=5.2,<5.3\ntorchvision==0.1\n" + (line + "\n" if line else "") + "numpy\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cu128"}
    subprocess.run(["sh", str(INSTALL_REQUIREMENTS), str(requirements)], env=env, check=True,
                   capture_output=True)
    assert log.read_text().splitlines() == [
        f"install --index-url https://download.pytorch.org/whl/cu128 {expected}",
        f"install -r {requirements}",
    ]


def test_install_requirements_without_an_index_is_plain_pip(tmp_path):
    bin_dir, log = _fake_pip(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch==2.13.0\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TORCH_INDEX_URL": ""}
    subprocess.run(["sh", str(INSTALL_REQUIREMENTS), str(requirements)], env=env, check=True,
                   capture_output=True)
    assert log.read_text().splitlines() == [f"install -r {requirements}"]


def test_collectstatic_works_with_the_image_node_modules_layout(tmp_path):
    """Rebuild the final stage's node_modules (only the folders the Dockerfile
    copies) and run collectstatic with the image's manifest storage on it."""
    node_stage = next(s for s in dockerfile_stages() if expand(s["from"]).startswith("node:"))
    final = dockerfile_stages()[-1]
    image_node_modules = stage_env(final)["BIOFM_NODE_MODULES"].rstrip("/")
    layout = tmp_path / "node_modules"
    for src, dest in stage_copies_from(final, node_stage["name"]):
        rel = dest.rstrip("/")[len(image_node_modules) + 1:]
        local = ROOT / "node_modules" / src.rstrip("/").split("node_modules/", 1)[1]
        if not local.exists():
            pytest.fail(f"{local} is missing: run `make assets` (npm install) first")
        if local.is_file():  # a single file copied into a folder (dest ends with "/")
            (layout / rel).mkdir(parents=True, exist_ok=True)
            shutil.copy2(local, layout / rel / local.name)
        else:
            shutil.copytree(local, layout / rel)
    env = {**os.environ, "BIOFM_NODE_MODULES": str(layout), "BIOFM_VAR_DIR": str(tmp_path / "var"),
           "BIOFM_MANIFEST_STATIC": "1", "DJANGO_SETTINGS_MODULE": "biofm_site.settings"}
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "var" / "static" / "staticfiles.json").read_text())["paths"]
    assert "vendor/htmx/htmx.min.js" in manifest
    assert "vendor/plotly/plotly.min.js" in manifest
    assert "vendor/3dmol/3Dmol-min.js" in manifest


# --- docker/entrypoint.sh and friends -------------------------------------

def test_entrypoint_is_executable_and_parses():
    mode = ENTRYPOINT.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXOTH, "docker/entrypoint.sh must be executable"
    assert ENTRYPOINT.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run([BASH, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(["sh", "-n", str(INSTALL_REQUIREMENTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def fake_programs(tmp_path):
    """python, celery and gunicorn that only record how they were called."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for program in ("python", "celery", "gunicorn"):
        path = bin_dir / program
        path.write_text(f'#!/bin/sh\nprintf "%s\\n" "{program} $*" >> "{log}"\n')
        path.chmod(0o755)

    def run(*args: str, env_extra: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        for name in ("PORT", *WEB_SERVER_SETTINGS):
            env.pop(name, None)
        env.update(env_extra or {})
        result = subprocess.run([str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30)
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return result, calls

    return run


def test_entrypoint_web_role_migrates_collects_and_serves(fake_programs):
    result, calls = fake_programs("web")
    assert result.returncode == 0, result.stderr
    bootstrap = f"python {BOOTSTRAP}"
    assert calls[:4] == [f"{bootstrap} wait-db", f"{bootstrap} migrate", "python manage.py check",
                         "python manage.py collectstatic --noinput --verbosity 0"]
    assert len(calls) == 5 and calls[4].startswith("gunicorn biofm_site.wsgi:application --bind 0.0.0.0:8000 ")


# Read by both docker/entrypoint.sh (gunicorn's options) and settings.py.
WEB_SERVER_SETTINGS = {"BIOFM_WEB_TIMEOUT": "--timeout", "BIOFM_WEB_THREADS": "--threads"}


def settings_default(name: str) -> int:
    """The default settings.py gives `name` when the environment has none."""
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if (isinstance(node, ast.Call) and ast.unparse(node.func) == "env_int" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == name):
            return ast.literal_eval(node.args[1])
    raise AssertionError(f"settings.py reads no {name} with env_int")


def test_gunicorn_runs_threaded_workers_with_the_settings_timeout(fake_programs):
    """Waiting API requests hold a thread, not a process, and gunicorn's
    timeout is the BIOFM_WEB_TIMEOUT the system check bounds the waits by."""
    result, calls = fake_programs("web")
    assert result.returncode == 0, result.stderr
    args = shlex.split(calls[-1])
    assert option(args, "--worker-class", "-k") == "gthread"
    for name, flag in WEB_SERVER_SETTINGS.items():
        assert option(args, flag) == str(settings_default(name)), f"{flag} default differs from settings.py's {name}"
    result, calls = fake_programs("web", env_extra={"BIOFM_WEB_TIMEOUT": "95", "BIOFM_WEB_THREADS": "12"})
    args = shlex.split(calls[-1])
    assert option(args, "--timeout") == "95" and option(args, "--threads") == "12"


def test_compose_web_settings_pass_the_wait_check(compose, settings):
    """The web service's defaults (and env.example's) give waits the system check accepts."""
    from workers.checks import SYNC_WAIT_MARGIN_SECONDS, sync_waits_end_before_the_web_timeout

    env = service_env(compose, "web")
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))
    names = ("BIOFM_WEB_TIMEOUT", "BIOFM_WEB_THREADS", "BIOFM_SYNC_MAX_WAITING",
             "BIOFM_ESM_SYNC_WAIT_SECONDS", "BIOFM_ATOMICA_SYNC_WAIT_SECONDS")
    for name in names:
        assert env[name] == example[name] == str(settings_default(name)), name
        setattr(settings, name, int(env[name]))
    assert sync_waits_end_before_the_web_timeout(None) == []
    assert int(env["BIOFM_ESM_SYNC_WAIT_SECONDS"]) + SYNC_WAIT_MARGIN_SECONDS <= int(env["BIOFM_WEB_TIMEOUT"])


@pytest.mark.parametrize("changes, check_id, named", [
    ({"BIOFM_ESM_SYNC_WAIT_SECONDS": 60}, "workers.E002", "BIOFM_ESM_SYNC_WAIT_SECONDS"),
    ({"BIOFM_ATOMICA_SYNC_WAIT_SECONDS": 120}, "workers.E002", "BIOFM_ATOMICA_SYNC_WAIT_SECONDS"),
    ({"BIOFM_WEB_TIMEOUT": 30}, "workers.E002", "BIOFM_WEB_TIMEOUT"),
    ({"BIOFM_SYNC_MAX_WAITING": 8}, "workers.E003", "BIOFM_WEB_THREADS"),
    ({"BIOFM_SYNC_MAX_WAITING": 0}, "workers.E003", "BIOFM_SYNC_MAX_WAITING"),
])
def test_system_check_refuses_waits_the_web_server_would_cut(settings, changes, check_id, named):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.BIOFM_WEB_TIMEOUT, settings.BIOFM_WEB_THREADS, settings.BIOFM_SYNC_MAX_WAITING = 60, 8, 4
    settings.BIOFM_ESM_SYNC_WAIT_SECONDS = settings.BIOFM_ATOMICA_SYNC_WAIT_SECONDS = 45
    call_command("check")  # the defaults pass
    for name, value in changes.items():
        setattr(settings, name, value)
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert check_id in str(caught.value) and named in str(caught.value)


def test_entrypoint_worker_role_waits_for_migrations_and_never_migrates(fake_programs):
    result, calls = fake_programs("worker", "-Q", "gpu", "--concurrency", "1", "-n", "gpu@%h")
    assert result.returncode == 0, result.stderr
    bootstrap = f"python {BOOTSTRAP}"
    assert calls == [f"{bootstrap} wait-db", f"{bootstrap} wait-migrations",
                     "celery -A biofm_site worker -Q gpu --concurrency 1 -n gpu@%h"]


def test_entrypoint_migrate_manage_and_pass_through(fake_programs):
    bootstrap = f"python {BOOTSTRAP}"
    result, calls = fake_programs("migrate")
    assert result.returncode == 0 and calls == [f"{bootstrap} wait-db", f"{bootstrap} migrate"]
    result, calls = fake_programs("manage", "createsuperuser", "--noinput")
    assert result.returncode == 0 and calls == ["python manage.py createsuperuser --noinput"]
    result, calls = fake_programs("echo", "hello there")
    assert result.returncode == 0 and result.stdout == "hello there\n" and calls == []


def test_entrypoint_stops_when_a_start_step_fails(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program, status in (("python", 1), ("gunicorn", 0), ("celery", 0)):
        (bin_dir / program).write_text(f"#!/bin/sh\necho {program} >> {tmp_path}/ran\nexit {status}\n")
        (bin_dir / program).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run([str(ENTRYPOINT), "worker", "-Q", "cpu"], env=env, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert (tmp_path / "ran").read_text().split() == ["python"], "no worker may start before the database is up"


def test_bootstrap_usage():
    result = subprocess.run([sys.executable, str(BOOTSTRAP), "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr
    compile(BOOTSTRAP.read_text(), str(BOOTSTRAP), "exec")
    compile((DOCKER_DIR / "healthcheck.py").read_text(), "healthcheck.py", "exec")


def test_healthchecks_call_files_that_exist(compose):
    web_test = compose["services"]["web"]["healthcheck"]["test"]
    assert "/app/docker/healthcheck.py" in web_test and (DOCKER_DIR / "healthcheck.py").exists()
    final = dockerfile_stages()[-1]
    workdir = [line.split(None, 1)[1] for line in final["lines"] if line.upper().startswith("WORKDIR")][-1]
    assert workdir == "/app", "the healthcheck path assumes the code in /app"
    for name in WORKERS:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        node = option(command_list(compose["services"][name]), "-n").split("@")[0]
        assert f"-d {node}@$${{HOSTNAME}}" in test, "the healthcheck pings this worker's own node name"


# --- .dockerignore --------------------------------------------------------

def test_dockerignore_keeps_local_state_out_and_build_inputs_in():
    patterns = {line.strip().strip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for needed in (".venv", "node_modules", "var", ".git", ".pytest_cache", ".env", "bench/out"):
        assert needed in patterns, f".dockerignore should exclude {needed}"
    for kept in ("requirements.txt", "package.json", "package-lock.json", "docker", "manage.py",
                 "biofm_site", "Dockerfile"):
        assert kept not in patterns and not any(p.startswith("!") for p in patterns), f"{kept} must stay in"
