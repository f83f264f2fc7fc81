#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_update
short_description: Move Docker containers to a new image or new environment values, with a health check and rollback
version_added: 0.1.0
description:
  - Recreates each named container from its own configuration (its C(Config) and C(HostConfig), labels, mounts and
    networks) with a new image (O(image)) and/or new environment values (O(env), O(env_file)), as C(docker compose up)
    does for one service. The containers are done one at a time, in the order given.
  - "For each container: the old one is renamed C(<name>-previous) and stopped, the new one is created under the old
    name and started, then it must become healthy within O(health_timeout) seconds: running, its own health check
    (when it has one) healthy, and O(health_url) (when given) answering 2xx."
  - When the new container does not become healthy it is stopped and removed, the old one gets its name back and is
    started again, and the module fails with a message that names the container, the image and the health output,
    and says it was rolled back (RV(rolled_back)). Containers after it in O(names) are not touched.
  - On success the previous container is removed, unless O(keep_previous=true).
  - A container whose image ID already is that of O(image) and whose environment already has the values asked for is
    left alone.
  - Settings the old container only had from its old image (environment entries, command, entrypoint, health check,
    labels, exposed ports, volumes) are not copied, so that the new image's own values apply. Anonymous volumes are
    mounted into the new container, so their data stays.
  - Environment values never appear in the results or messages; RV(containers[].env_keys) names the keys that change.
notes:
  - The image must already be in the engine (pulled or built, for instance with community.docker.docker_image).
  - Without a health check of its own and without O(health_url), a new container only has to be running.
  - A container that was not running is recreated and left stopped, like the old one.
  - Refuses to update a container while a C(<name>-previous) container exists (kept by an earlier update, or left
    by an interrupted one).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is touched; RV(containers) says which containers would be recreated and why.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  names:
    description: Containers to update, by name, in this order, one at a time.
    type: list
    elements: str
    required: true
  image:
    description:
      - A local image reference (V(webstack/web:latest)) or image ID the containers should run. Omitted, each keeps the
        image it runs (an environment-only update).
    type: str
  env:
    description:
      - Environment values to set in the containers (added or replaced; other variables stay). Applied after
        O(env_file). Values are not logged.
    type: dict
  env_file:
    description:
      - A file on the managed host of C(KEY=VALUE) lines (C(#) comments and blank lines skipped, values taken as
        written, as C(docker run --env-file) reads them) whose entries replace the containers' values.
    type: path
  health_timeout:
    description: Seconds each new container has to become healthy.
    type: float
    default: 120
  health_url:
    description:
      - A URL, fetched from the managed host, that must answer 2xx before a new container counts as healthy (for
        instance the app's C(/health/)).
    type: str
  keep_previous:
    description: Keep the previous container (stopped, named C(<name>-previous)) after a successful update.
    type: bool
    default: false
  docker_host:
    description:
      - The Docker engine, as C(unix:///run/docker.sock) or C(tcp://127.0.0.1:2375). Omitted, C(DOCKER_HOST), else the
        local socket.
    type: str
requirements:
  - docker (the Docker SDK for Python)
seealso:
  - module: webstack.ops.container_status
  - module: community.docker.docker_image
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Pull the new web image
  community.docker.docker_image:
    name: registry.example.com/webstack/web:latest
    source: pull
    force_source: true

- name: Move the app containers to it, one at a time, rolled back if one fails its health check
  webstack.ops.container_update:
    names: [website, celery_worker, celery_beat, flower]
    image: registry.example.com/webstack/web:latest
    health_url: http://127.0.0.1:8000/health/
    health_timeout: 90

- name: Rotate Django's SECRET_KEY from a file written with mode 0600
  webstack.ops.container_update:
    names: [website, celery_worker, celery_beat]
    env_file: /etc/webstack/secret.env
"""

RETURN = r"""
containers:
  description: One entry per container handled, in order (the containers after a failed one are not listed).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
      sample: website
    action:
      description: V(recreated), V(unchanged), V(would_recreate) (check mode), V(rolled_back), or V(failed) when the
        rollback itself failed.
      type: str
      sample: recreated
    reasons:
      description: Why it is (or would be) recreated.
      type: list
      elements: str
      sample: ["image sha256:4f2a9c1b7d3e differs from the running sha256:0c1d2e3f4a5b"]
    image:
      description: The image reference the new container is created from.
      type: str
      sample: webstack/web:latest
    image_id_before:
      description: Image ID of the old container.
      type: str
    image_id_after:
      description: Image ID of the container now running under the name (the planned one in check mode).
      type: str
    env_keys:
      description: Environment keys whose values change (never the values).
      type: list
      elements: str
      sample: [DJANGO_SECRET_KEY]
    id_before:
      description: Short ID of the old container.
      type: str
    id_after:
      description: Short ID of the container now under the name.
      type: str
    previous:
      description: Name of the previous container when it was kept, else null.
      type: str
    health:
      description: Health check status of the new container (null without a health check).
      type: str
      sample: healthy
    health_output:
      description: What was wrong with a container that was rolled back (its last health probe, or the URL's answer).
      type: str
    seconds:
      description: Time the recreation and the health wait took.
      type: float
    notes:
      description: Anything worth knowing that did not fail the update.
      type: list
      elements: str
rolled_back:
  description: Whether a container failed and was rolled back.
  returned: always
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.webstack.ops.plugins.module_utils import _container_update as update
from ansible_collections.webstack.ops.plugins.module_utils._docker import DOCKER_HINT, DOCKER_IMPORT_ERROR, DockerError, connect, docker, engine_name


def run(module):
    params = module.params
    env = {}
    if params["env_file"]:
        env.update(update.read_env_file(params["env_file"]))
    env.update({str(key): "" if value is None else str(value) for key, value in (params["env"] or {}).items()})
    bad = sorted(key for key in env if not update.ENV_KEY.match(key))
    if bad:
        raise update.UpdateError("env has keys that are not variable names: %s" % ", ".join(bad))
    if not params["image"] and not env:
        raise update.UpdateError("nothing to update: give image, env or env_file")

    client = connect(params["docker_host"], timeout=max(60, params["health_timeout"] + 30))
    try:
        api = client.api
        plans = [update.plan(api, name, params["image"], env) for name in params["names"]]
        results = []
        for planned in plans:
            if not planned["reasons"]:
                results.append(update.entry_of(planned, "unchanged"))
            elif module.check_mode:
                results.append(update.entry_of(planned, "would_recreate"))
            else:
                try:
                    results.append(update.recreate(api, planned, params["health_timeout"], params["health_url"],
                                                   params["keep_previous"]))
                except update.UpdateFailed as exc:
                    results.append(exc.entry)
                    module.fail_json(msg=str(exc), changed=any(r["action"] == "recreated" for r in results),
                                     containers=results, rolled_back=exc.entry["rolled_back"])
    finally:
        client.close()
    changed = any(r["action"] in ("recreated", "would_recreate") for r in results)
    module.exit_json(changed=changed, containers=results, rolled_back=False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            image=dict(type="str"),
            env=dict(type="dict", no_log=True),
            env_file=dict(type="path"),
            health_timeout=dict(type="float", default=120),
            health_url=dict(type="str"),
            keep_previous=dict(type="bool", default=False),
            docker_host=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if docker is None:
        module.fail_json(msg=missing_required_lib("docker", reason=DOCKER_HINT), exception=DOCKER_IMPORT_ERROR)
    try:
        run(module)
    except (DockerError, update.UpdateError) as exc:
        module.fail_json(msg="%s. Nothing was changed." % exc if isinstance(exc, update.UpdateError) else str(exc),
                         changed=False, containers=[], rolled_back=False)
    except docker.errors.DockerException as exc:
        module.fail_json(msg="the Docker engine %s failed a request: %s" % (engine_name(module.params["docker_host"]), exc),
                         containers=[], rolled_back=False)


if __name__ == "__main__":
    main()
