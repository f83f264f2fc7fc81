"""The guide's containers on a local Docker engine: images built from Debian packages, the stack started and stopped.

Images (no registry is reachable, so everything starts from debootstrap):

- ``webstack-sandbox/base:bookworm``: ``debootstrap --variant=minbase bookworm`` from the host's Debian mirror,
  imported with ``docker import``. The rootfs tarball is kept in a cache directory (default
  ``~/.cache/webstack-ops/images``), keyed by a hash of its definition, so a fresh Docker data root only re-imports it.
- ``webstack-sandbox/postgres``, ``webstack-sandbox/redis``, ``webstack-sandbox/web-deps``: ``docker build`` FROM the
  base, from ``sandbox/images/<name>/`` (web-deps: python3 and a venv with ``sandbox/app/requirements.txt``);
  ``webstack-sandbox/web``: FROM web-deps, with ``sandbox/app`` as ``/app`` (an app change rebuilds only this one). Each built image is saved
  (``docker save``) to the cache dir under its context hash, so a fresh engine ``docker load``s it instead of building.

Every image carries the hash of its definition in the label ``LABEL_HASH``; an image whose label matches is not
rebuilt. Containers carry the labels docker compose would set (project, service, oneoff) plus a config hash: a
running container with the same hash is kept, a changed one is recreated, and containers of other projects are
never touched.

    client = docker.DockerClient(base_url=engine.base_url)
    images = ensure_images(client)                    # {"base": id, "postgres": id, "redis": id, "web-deps": id, "web": id}
    settings = default_settings(state_dir)            # free ports, random passwords, data dirs under state_dir
    info = start_stack(client, settings)              # {"containers": {name: id}, "images": ..., ...}
    stop_stack(client, settings["project"])
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
IMAGES_DIR = HERE / "images"
APP_DIR = Path(os.environ.get("WEBSTACK_SANDBOX_APP_DIR") or HERE / "app")  # the override is for developing the images
# $WEBSTACK_IMAGE_CACHE, else $XDG_CACHE_HOME/webstack-ops/images, else ~/.cache/webstack-ops/images
DEFAULT_CACHE_DIR = Path(os.environ.get("WEBSTACK_IMAGE_CACHE")
                         or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "webstack-ops" / "images")

BASE_IMAGE = "webstack-sandbox/base:bookworm"
IMAGE_NAMES = {"postgres": "webstack-sandbox/postgres:latest", "redis": "webstack-sandbox/redis:latest",
               "web-deps": "webstack-sandbox/web-deps:latest", "web": "webstack-sandbox/web:latest"}
# Built images and what each is built FROM, in build order.
IMAGE_PARENTS = {"postgres": "base", "redis": "base", "web-deps": "base", "web": "web-deps"}
LABEL_HASH = "org.webstack-ops.definition-hash"
LABEL_CONFIG = "com.docker.compose.config-hash"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_NUMBER = "com.docker.compose.container-number"
DEFAULT_PROJECT = "webstack"

# The guide's containers, in start order.
SERVICES = ("postgres_db", "redis_cache", "website", "celery_worker", "celery_beat", "flower")
WEB_SERVICES = ("website", "celery_worker", "celery_beat", "flower")
FAULTS_MOUNT = "/run/webstack-faults"  # settings["dirs"]["faults"] in the app containers, read-only
DEFAULT_MEM_LIMITS = {"postgres_db": "1g", "redis_cache": "256m", "website": "768m", "celery_worker": "768m",
                      "celery_beat": "256m", "flower": "256m"}

# Host settings the images need to reach the package registries from this machine: extra CA certificates
# (an egress proxy may re-sign TLS) and apt options (a snapshot mirror's Release files may be past Valid-Until).
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_APT_CONF_DIR = Path("/etc/apt/apt.conf.d")
APT_OPTIONS_KEPT = ("Acquire::Check-Valid-Until", "Acquire::Check-Date")
DEBIAN_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
FALLBACK_MIRROR = "http://deb.debian.org/debian"


class ContainerError(RuntimeError):
    """An image could not be built, or the stack could not be started or stopped."""


class AppMissingError(ContainerError):
    """sandbox/app/requirements.txt does not exist yet: the web image cannot be built."""


# Images.


def debian_mirror() -> str:
    """The host's main Debian mirror URI (deb822 or one-line format), e.g. http://deb.debian.org/debian."""
    for path in DEBIAN_SOURCES:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1).rstrip("/")
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and fields[2] == "bookworm":
                return fields[1].rstrip("/")
    return FALLBACK_MIRROR


def host_trust() -> dict[str, str]:
    """Files copied into the base rootfs so apt and pip work from it as they do on the host."""
    files: dict[str, str] = {}
    if HOST_CA_DIR.is_dir():
        for cert in sorted(HOST_CA_DIR.glob("*.crt")):
            files[f"usr/local/share/ca-certificates/{cert.name}"] = cert.read_text()
    options = []
    if HOST_APT_CONF_DIR.is_dir():
        for conf in sorted(HOST_APT_CONF_DIR.iterdir()):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                options += [line.strip() for line in conf.read_text().splitlines() if line.strip().startswith(APT_OPTIONS_KEPT)]
    if options:
        files["etc/apt/apt.conf.d/99webstack-sandbox-host"] = "\n".join(sorted(set(options))) + "\n"
    return files


def base_definition(mirror: str | None = None) -> dict[str, Any]:
    """What the base image is made of; its hash names the cached rootfs and labels the image."""
    return {
        "format": 1,
        "suite": "bookworm",
        "variant": "minbase",
        "mirror": mirror or debian_mirror(),
        # python3 for healthchecks and fault helpers in every container
        "include": ["python3-minimal"],
        "files": host_trust(),
    }


def definition_hash(definition: Any) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def _image(client: docker.DockerClient, name: str):
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """One builder at a time per cache dir (parallel test sessions share it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


def _remove_rootfs(rootfs: Path) -> None:
    """Remove a debootstrap tree, after unmounting what a failed debootstrap may have left mounted in it."""
    for mount in sorted(_mounts_under(rootfs), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    if _mounts_under(rootfs):
        raise ContainerError(f"{rootfs} still has mounts; not removing it")
    shutil.rmtree(rootfs, ignore_errors=True)


def build_rootfs_tarball(definition: dict[str, Any], tarball: Path, log=print) -> None:
    """debootstrap the definition into a temporary tree next to tarball, then tar it to tarball (atomically)."""
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    rootfs = work / "rootfs"
    try:
        argv = ["debootstrap", f"--variant={definition['variant']}"]
        if definition["include"]:
            argv.append("--include=" + ",".join(definition["include"]))
        argv += [definition["suite"], str(rootfs), definition["mirror"]]
        log(f"base image: {' '.join(argv)}")
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            raise ContainerError(f"debootstrap failed (exit {result.returncode}); is {definition['mirror']} reachable?\n"
                                 + "\n".join(result.stdout.splitlines()[-30:]))
        for relative, content in definition["files"].items():
            target = rootfs / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        # Smaller image: no package cache or lists (images run apt-get update first).
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        with open(partial, "wb") as out:
            subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=out, check=True)
        partial.replace(tarball)
    finally:
        _remove_rootfs(rootfs)
        shutil.rmtree(work, ignore_errors=True)


def ensure_base_image(client: docker.DockerClient, cache_dir: str | Path | None = None, log=print) -> str:
    """The id of webstack-sandbox/base:bookworm, imported from the cached rootfs (debootstrapped on a cache miss)."""
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    definition = base_definition()
    digest = definition_hash(definition)
    image = _image(client, BASE_IMAGE)
    if image is not None and image.labels.get(LABEL_HASH) == digest:
        return image.id
    with _locked(cache_dir):
        tarball = cache_dir / f"base-bookworm-{digest}.tar"
        if not tarball.exists():
            began = time.monotonic()
            build_rootfs_tarball(definition, tarball, log)
            log(f"base image: rootfs cached in {tarball} ({time.monotonic() - began:.0f} s)")
            for stale in cache_dir.glob("base-bookworm-*.tar"):
                if stale != tarball:
                    stale.unlink()
        began = time.monotonic()
        changes = [f"LABEL {LABEL_HASH}={digest}", 'CMD ["/bin/bash"]', "ENV LANG=C.UTF-8"]
        repository, tag = BASE_IMAGE.split(":")
        result = client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=changes)
        if "error" in str(result).lower() and _image(client, BASE_IMAGE) is None:
            raise ContainerError(f"docker import of {tarball} failed: {result}")
        image = client.images.get(BASE_IMAGE)
        log(f"base image: imported {image.short_id} in {time.monotonic() - began:.1f} s")
        return image.id


def _context_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """Files of a build context directory, relative name first, in a stable order (caches and state left out)."""
    skipped_dirs = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "node_modules", ".git", ".venv", "venv", "state", "staticfiles"}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in skipped_dirs and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo", ".sqlite3", ".log")):
                continue
            path = Path(root) / name
            yield str(path.relative_to(directory)), path


def build_context(name: str, app_dir: Path | None = None) -> dict[str, bytes]:
    """The build context of image `name`: sandbox/images/<name>/, plus the app's requirements (web-deps) or the app (web) under app/."""
    files = {relative: path.read_bytes() for relative, path in _context_files(IMAGES_DIR / name)}
    if name in ("web", "web-deps"):
        app_dir = Path(app_dir or APP_DIR)
        if not (app_dir / "requirements.txt").is_file():
            raise AppMissingError(f"web image: {app_dir / 'requirements.txt'} does not exist yet; the web image and the website, "
                                  "celery and flower containers need the Django app in sandbox/app")
        if name == "web-deps":
            files["app/requirements.txt"] = (app_dir / "requirements.txt").read_bytes()
        else:
            files.update({f"app/{relative}": path.read_bytes() for relative, path in _context_files(app_dir)})
    return files


def context_hash(files: dict[str, bytes], parent_hash: str) -> str:
    """Hash of a build context on top of its parent's hash (not the parent's image id: the base's differs per import)."""
    digest = hashlib.sha256(parent_hash.encode())
    for relative in sorted(files):
        digest.update(relative.encode() + b"\0" + hashlib.sha256(files[relative]).digest())
    return digest.hexdigest()[:16]


def _context_tar(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for relative in sorted(files):
            info = tarfile.TarInfo(relative)
            info.size = len(files[relative])
            info.mode = 0o755 if relative.endswith(".sh") else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[relative]))
    buffer.seek(0)
    return buffer


def _load_cached(client: docker.DockerClient, tarball: Path, tag: str, digest: str, log) -> str | None:
    """docker load a saved image; its id if it brought back `tag` with the expected hash."""
    began = time.monotonic()
    try:
        with open(tarball, "rb") as data:
            client.api.load_image(data)
    except (OSError, docker.errors.APIError) as error:
        log(f"{tag}: cached image {tarball} unusable ({error}); building it again")
        tarball.unlink(missing_ok=True)
        return None
    image = _image(client, tag)
    if image is None or image.labels.get(LABEL_HASH) != digest:
        tarball.unlink(missing_ok=True)
        return None
    log(f"{tag}: loaded from {tarball} in {time.monotonic() - began:.1f} s")
    return image.id


def _save_cached(image, tarball: Path, name: str) -> None:
    """docker save the image to the cache (atomically), dropping older saves of the same image."""
    partial = tarball.with_suffix(".partial")
    with open(partial, "wb") as out:
        for chunk in image.save(named=True):
            out.write(chunk)
    partial.replace(tarball)
    same_image = re.compile(rf"image-{re.escape(name)}-[0-9a-f]{{16}}\.tar")  # image-web-* must not match image-web-deps-*
    for stale in tarball.parent.glob(f"image-{name}-*.tar"):
        if stale != tarball and same_image.fullmatch(stale.name):
            stale.unlink()


def ensure_image(client: docker.DockerClient, name: str, parent_id: str, *, app_dir: Path | None = None,
                 cache_dir: Path | None = None, log=print) -> str:
    """webstack-sandbox/<name>'s id: kept when its context hash matches, else loaded from the cache, else built (and cached).

    parent_id is the image its Dockerfile is FROM (IMAGE_PARENTS), already ensured.
    """
    files = build_context(name, app_dir)
    parent_hash = client.images.get(parent_id).labels.get(LABEL_HASH, parent_id)
    digest = context_hash(files, parent_hash)
    tag = IMAGE_NAMES[name]
    image = _image(client, tag)
    if image is not None and image.labels.get(LABEL_HASH) == digest:
        return image.id
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    with _locked(cache_dir):
        tarball = cache_dir / f"image-{name}-{digest}.tar"
        if tarball.exists():
            loaded = _load_cached(client, tarball, tag, digest, log)
            if loaded:
                return loaded
        began = time.monotonic()
        log(f"{name} image: building {tag} ({digest})")
        lines = []
        try:
            stream = client.api.build(fileobj=_context_tar(files), custom_context=True, tag=tag, labels={LABEL_HASH: digest},
                                      network_mode="host", rm=True, forcerm=True, pull=False, decode=True)
            for chunk in stream:
                if "stream" in chunk:
                    lines.append(chunk["stream"])
                if "error" in chunk:
                    raise ContainerError(f"{name} image: docker build failed: {chunk['error'].strip()}\n" + "".join(lines[-40:]))
        finally:
            with contextlib.suppress(OSError):
                (cache_dir / f"build-{name}.log").write_text("".join(lines))
        image = client.images.get(tag)
        log(f"{name} image: built {image.short_id} in {time.monotonic() - began:.0f} s")
        began = time.monotonic()
        _save_cached(image, tarball, name)
        log(f"{name} image: saved to {tarball} in {time.monotonic() - began:.1f} s")
        return image.id


def ensure_images(client: docker.DockerClient, cache_dir: str | Path | None = None, *, app_dir: str | Path | None = None,
                  require_web: bool = False, log=print) -> dict[str, str]:
    """Base, postgres, redis, web-deps and web images (each rebuilt only when its definition changed): {name: image id}.

    Without sandbox/app/requirements.txt the web images are skipped with a message (or AppMissingError
    when require_web is true) and "web-deps" and "web" are missing from the result.
    """
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    images = {"base": ensure_base_image(client, cache_dir, log)}
    for name, parent in IMAGE_PARENTS.items():
        if parent not in images:
            continue
        try:
            images[name] = ensure_image(client, name, images[parent], app_dir=Path(app_dir) if app_dir else None,
                                        cache_dir=cache_dir, log=log)
        except AppMissingError as error:
            if require_web:
                raise
            log(f"skipped: {error}")
    return images


# The stack.


def default_settings(state_dir: str | Path, project: str = DEFAULT_PROJECT, ports: dict[str, int] | None = None) -> dict[str, Any]:
    """Settings for start_stack: free loopback ports, random passwords, data dirs under state_dir.

    Keys: project; ports {postgres, redis, web, flower}; passwords {postgres, redis, admin (the Django admin's, for
    the runbooks)}; postgres_user, postgres_db; dirs {postgres_data, logs, static, faults}; secret_key; allowed_hosts;
    redis_maxmemory; mem_limits {container: "256m" | None}; env (extra environment for the app containers);
    env_file (the app's environment file, see ensure_env_file).
    """
    from harness.base import free_port  # noqa: PLC0415 - harness is a sibling package, found through sys.path

    state_dir = Path(state_dir).resolve()
    chosen = {name: free_port() for name in ("postgres", "redis", "web", "flower")}
    chosen.update(ports or {})
    return {
        "project": project,
        "ports": chosen,
        "passwords": {"postgres": secrets.token_urlsafe(18), "redis": secrets.token_urlsafe(18), "admin": secrets.token_urlsafe(18)},
        "postgres_user": "postgres",
        "postgres_db": "webstack",
        "dirs": {"postgres_data": str(state_dir / "pgdata"), "logs": str(state_dir / "logs"), "static": str(state_dir / "static"),
                 "faults": str(state_dir / "faults")},
        "secret_key": secrets.token_urlsafe(40),
        "allowed_hosts": "127.0.0.1,localhost",
        "redis_maxmemory": "128mb",
        "mem_limits": dict(DEFAULT_MEM_LIMITS),
        "env": {},
        "env_file": str(state_dir / "app.env"),
    }


# The app's own secrets, kept in its environment file (like a compose project's .env) so the security-breach runbook
# can rotate them there; the stack's wiring (ports, database and Redis passwords) stays in the settings.
ENV_FILE_KEYS = ("DJANGO_SECRET_KEY",)


def read_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (docker's --env-file format: no quotes, no expansion; # comments)."""
    values = {}
    for line in Path(path).read_text().splitlines():
        text = line.strip().removeprefix("export ").lstrip()
        if text and not text.startswith("#") and "=" in text:
            key, value = text.split("=", 1)
            values[key] = value
    return values


def ensure_env_file(settings: dict[str, Any]) -> Path | None:
    """Write settings["env_file"] (mode 0600) with the app's secrets from the settings, unless it exists.

    An existing file is never rewritten: a key rotated in it (SECRET_KEY, AWS keys) survives `stackctl up`, and its
    values win over the settings in the app containers (app_environment).
    """
    if not settings.get("env_file"):
        return None
    path = Path(settings["env_file"])
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {key: value for key, value in app_environment(settings).items() if key in ENV_FILE_KEYS}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# The app's environment: read by the sandbox's web containers; its values win over settings.json.\n")
            out.writelines(f"{key}={value}\n" for key, value in values.items())
    return path


def app_environment(settings: dict[str, Any]) -> dict[str, str]:
    """What the Django app and Celery read."""
    ports, passwords = settings["ports"], settings["passwords"]
    redis_url = f"redis://:{urllib.parse.quote(passwords['redis'], safe='')}@127.0.0.1:{ports['redis']}"
    env = {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(ports["postgres"]),
        "POSTGRES_DB": settings.get("postgres_db", "webstack"),
        "POSTGRES_USER": settings.get("postgres_user", "postgres"),
        "POSTGRES_PASSWORD": passwords["postgres"],
        "REDIS_URL": f"{redis_url}/1",
        "CELERY_BROKER_URL": f"{redis_url}/0",
        "DJANGO_SECRET_KEY": settings["secret_key"],
        "DJANGO_ALLOWED_HOSTS": settings.get("allowed_hosts", "127.0.0.1,localhost"),
        "LOG_DIR": "/var/log/webstack",
        "STATIC_ROOT": "/srv/static",
        "WEB_PORT": str(ports["web"]),
        "FLOWER_PORT": str(ports["flower"]),
        "FLOWER_UNAUTHENTICATED_API": "true",
    }
    if settings["dirs"].get("faults"):  # `touch <faults>/health-fail` on the host: /health/ answers 503 until it is removed
        env["HEALTH_FORCE_FAIL_FILE"] = f"{FAULTS_MOUNT}/health-fail"
    env.update({key: str(value) for key, value in settings.get("env", {}).items()})
    if settings.get("env_file") and Path(settings["env_file"]).exists():  # the app's env file wins (ensure_env_file)
        env.update(read_env_file(settings["env_file"]))
    return env


def _healthcheck(command: str, interval_s: float, start_period_s: float = 60) -> dict[str, Any]:
    nanos = 1_000_000_000
    return {"test": ["CMD-SHELL", command], "interval": int(interval_s * nanos), "timeout": 5 * nanos, "retries": 3,
            "start_period": int(start_period_s * nanos)}


WEB_HEALTH = ('python -c "import os, urllib.request; '
              "urllib.request.urlopen('http://127.0.0.1:%s/health/' % os.environ['WEB_PORT'], timeout=4)\"")


def container_specs(settings: dict[str, Any], images: dict[str, str]) -> dict[str, dict[str, Any]]:
    """containers.create() arguments per container (without name and labels), in start order."""
    ports, passwords, dirs = settings["ports"], settings["passwords"], settings["dirs"]
    limits = settings.get("mem_limits", DEFAULT_MEM_LIMITS)
    postgres_env = {"POSTGRES_PASSWORD": passwords["postgres"], "POSTGRES_PORT": str(ports["postgres"]), "PGPORT": str(ports["postgres"]),
                    "POSTGRES_USER": settings.get("postgres_user", "postgres"), "POSTGRES_DB": settings.get("postgres_db", "webstack"),
                    "PGUSER": settings.get("postgres_user", "postgres")}
    redis_env = {"REDIS_PASSWORD": passwords["redis"], "REDIS_PORT": str(ports["redis"]), "REDISCLI_AUTH": passwords["redis"],
                 "REDIS_MAXMEMORY": settings.get("redis_maxmemory", "128mb")}
    specs: dict[str, dict[str, Any]] = {
        "postgres_db": {
            "image": images["postgres"], "environment": postgres_env,
            "volumes": {dirs["postgres_data"]: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
            "healthcheck": _healthcheck('pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER"', 2),
            "stop_signal": "SIGINT",
        },
        "redis_cache": {
            "image": images["redis"], "environment": redis_env,
            "healthcheck": _healthcheck('redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG', 2),
        },
    }
    if "web" in images:
        app_env = app_environment(settings)
        app_volumes = {dirs["logs"]: {"bind": "/var/log/webstack", "mode": "rw"}, dirs["static"]: {"bind": "/srv/static", "mode": "rw"}}
        if dirs.get("faults"):
            app_volumes[dirs["faults"]] = {"bind": FAULTS_MOUNT, "mode": "ro"}
        flower_health = ('python -c "import os, urllib.request; '
                         "urllib.request.urlopen('http://127.0.0.1:%s/healthcheck' % os.environ['FLOWER_PORT'], timeout=4)\"")
        for name, role in zip(WEB_SERVICES, ("web", "worker", "beat", "flower"), strict=True):
            specs[name] = {"image": images["web"], "command": [role], "environment": app_env, "volumes": app_volumes}
        specs["website"]["healthcheck"] = _healthcheck(WEB_HEALTH, 3, 120)
        specs["flower"]["healthcheck"] = _healthcheck(flower_health, 3, 60)
    for name, spec in specs.items():
        spec.update(network_mode="host", restart_policy={"Name": "unless-stopped"}, detach=True, init=False)
        if limits.get(name):
            spec["mem_limit"] = limits[name]
            spec["memswap_limit"] = limits[name]  # no swap: over the limit means OOM-killed
    return specs


def config_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def project_containers(client: docker.DockerClient, project: str = DEFAULT_PROJECT) -> list:
    """Every container (running or not) labelled with our compose project."""
    return client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project}"})


def _by_name(client: docker.DockerClient, name: str):
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def wait_healthy(container, timeout: float = 120) -> None:
    """Wait until Docker reports the container healthy; a ContainerError with its logs if it exits or stays unhealthy."""
    deadline = time.monotonic() + timeout
    container.reload()
    restarts_before = container.attrs.get("RestartCount", 0)
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        if state["Status"] in ("exited", "dead") and not state.get("Restarting"):
            break
        if container.attrs.get("RestartCount", 0) >= restarts_before + 3:  # crash loop: no point in waiting
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    logs = container.logs(tail=40).decode(errors="replace")
    raise ContainerError(f"{container.name} did not become healthy (status {state['Status']}, health {health}, "
                         f"restarts {container.attrs.get('RestartCount')}); last log lines:\n{logs}")


def _ensure_container(client: docker.DockerClient, project: str, name: str, spec: dict[str, Any], log) -> tuple[Any, str]:
    digest = config_hash(spec)
    labels = {LABEL_PROJECT: project, LABEL_SERVICE: name, LABEL_ONEOFF: "False", LABEL_NUMBER: "1", LABEL_CONFIG: digest}
    existing = _by_name(client, name)
    if existing is not None:
        if existing.labels.get(LABEL_PROJECT) != project:
            raise ContainerError(f"a container named {name} ({existing.short_id}) exists and is not part of project {project!r}; "
                                 f"it was not touched: remove or rename it (docker rm -f {name}) or use another Docker engine")
        if existing.labels.get(LABEL_CONFIG) == digest:
            if existing.status == "paused":
                existing.unpause()
            elif existing.status in ("created", "exited", "dead"):
                existing.start()
            else:  # running, or restarting under its restart policy
                return existing, "kept"
            log(f"{name}: started again ({existing.short_id})")
            return existing, "started"
        if existing.status in ("running", "restarting", "paused"):
            existing.stop(timeout=15)  # a clean shutdown (PostgreSQL: no crash recovery on the next start)
        existing.remove(force=True)
        log(f"{name}: configuration changed, recreating")
    for directory in (spec.get("volumes") or {}):
        Path(directory).mkdir(parents=True, exist_ok=True)
    container = client.containers.run(name=name, labels=labels, **spec)
    log(f"{name}: created {container.short_id}")
    return container, "created"


def start_stack(client: docker.DockerClient, settings: dict[str, Any], *, images: dict[str, str] | None = None,
                cache_dir: str | Path | None = None, timeout: float = 180, log=print) -> dict[str, Any]:
    """Start the guide's containers (images built as needed); idempotent.

    Returns {"project", "containers": {name: id}, "actions": {name: created|kept|started}, "images", "skipped"}.
    Without the web app only postgres_db and redis_cache run, and "skipped" says why.
    """
    project = settings.get("project", DEFAULT_PROJECT)
    skipped = []
    if images is None:
        images = ensure_images(client, cache_dir, log=log)
    if "web" not in images:
        skipped.append(f"{', '.join(WEB_SERVICES)}: no web image ({APP_DIR / 'requirements.txt'} missing)")
    specs = container_specs(settings, images)
    containers, actions = {}, {}
    for name, spec in specs.items():
        container, action = _ensure_container(client, project, name, spec, log)
        containers[name], actions[name] = container, action
        if name in ("redis_cache", "website"):  # the database and cache first, the app before its workers
            for ready in ("postgres_db", "redis_cache") if name == "redis_cache" else ("website",):
                wait_healthy(containers[ready], timeout)
    if "flower" in containers:
        wait_healthy(containers["flower"], timeout)
    return {"project": project, "containers": {name: c.id for name, c in containers.items()}, "actions": actions,
            "images": images, "skipped": skipped}


def stop_stack(client: docker.DockerClient, project: str = DEFAULT_PROJECT, timeout: int = 15, log=print) -> list[str]:
    """Stop and remove our project's containers (nothing else), in reverse start order; the removed names."""
    ours = project_containers(client, project)
    order = {name: index for index, name in enumerate(SERVICES)}
    ours.sort(key=lambda c: order.get(c.labels.get(LABEL_SERVICE, ""), -1), reverse=True)
    removed = []
    for container in ours:
        if container.labels.get(LABEL_PROJECT) != project:  # belt and braces: the filter already did this
            continue
        with contextlib.suppress(docker.errors.NotFound):
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=timeout)
            container.remove(force=True)
            removed.append(container.name)
            log(f"{container.name}: removed")
    return removed
