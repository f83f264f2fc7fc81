#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_logs
short_description: Pack the last lines of containers' logs and of log files into a tar.gz bundle
version_added: 0.1.0
description:
  - The guide's C(docker-compose logs --tail) kept for later, when an outage is being fixed. Reads the last O(lines)
    lines of every container named or of the compose O(project) through the Docker API, stopped containers too,
    and the last O(lines) lines of each file in O(paths) (nginx's error log), and writes them into one gzipped tar at
    O(dest) with each container's state and its last health check outputs (C(containers.json)) and O(info)
    (C(info.json)).
  - A container's environment is never read (it holds the stack's passwords). The strings in O(secrets) are replaced
    by C(********) in everything written, plain and URL-quoted.
  - A source that cannot be read (a missing container or file, an unreachable engine) is listed in RV(errors) and
    the bundle is written with the rest.
notes:
  - The bundle is written to a temporary file beside O(dest), then renamed, with mode C(0600).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode every source is read and reported in RV(sources), and nothing is written.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  names:
    description: Containers whose logs are collected, by name or ID.
    type: list
    elements: str
  project:
    description: Also collect the logs of every container of this docker-compose project (label C(com.docker.compose.project)).
    type: str
  docker_host:
    description:
      - The Docker engine, as C(unix:///run/docker.sock) or C(tcp://127.0.0.1:2375). Omitted, C(DOCKER_HOST), else the
        local socket.
    type: str
  lines:
    description: How many of the last lines to keep per container and per file.
    type: int
    default: 200
  paths:
    description: Log files on the host whose last O(lines) lines are collected too.
    type: list
    elements: path
  info:
    description: Anything else worth keeping with the logs (a diagnosis), written as C(info.json).
    type: dict
  secrets:
    description: Strings masked in the bundle (passwords an application might print in its logs).
    type: list
    elements: str
  dest:
    description: Path of the C(.tar.gz) to write on the managed host; its directory must exist.
    type: path
    required: true
requirements:
  - docker (the Docker SDK for Python), to read containers' logs
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Keep the last 200 lines of every container of the stack and of nginx's error log
  webstack.ops.container_logs:
    project: webstack
    paths: [/var/log/nginx/error.log]
    secrets: ["{{ webstack_postgres_password }}"]
    dest: /tmp/outage-logs.tar.gz
  register: bundle
"""

RETURN = r"""
dest:
  description: The bundle written (the path it would be written to in check mode).
  returned: success
  type: str
  sample: /tmp/outage-logs.tar.gz
size:
  description: Its size in bytes; null in check mode.
  returned: success
  type: int
  sample: 18231
sources:
  description: What went into the bundle, one entry per container or file.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(container) or V(file).
      type: str
    source:
      description: The container's name or the file's path.
      type: str
    member:
      description: Its name in the bundle.
      type: str
      sample: containers/website.log
    lines:
      description: Lines kept.
      type: int
    bytes:
      description: Bytes kept.
      type: int
errors:
  description: Sources that could not be read, each with kind, source and error.
  returned: success
  type: list
  elements: dict
  sample: [{"kind": "container", "source": "flower", "error": "container flower does not exist"}]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.webstack.ops.plugins.module_utils._container_logs import BundleError, collect, write_bundle
from ansible_collections.webstack.ops.plugins.module_utils._docker import DOCKER_HINT, DOCKER_IMPORT_ERROR, docker


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str"),
            project=dict(type="str"),
            docker_host=dict(type="str"),
            lines=dict(type="int", default=200),
            paths=dict(type="list", elements="path"),
            info=dict(type="dict"),
            secrets=dict(type="list", elements="str", no_log=True),
            dest=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["lines"] < 1:
        module.fail_json(msg="lines must be 1 or more, got %d. Nothing was written." % params["lines"])
    if (params["names"] or params["project"]) and docker is None:
        module.fail_json(msg=missing_required_lib("docker", reason=DOCKER_HINT), exception=DOCKER_IMPORT_ERROR)
    members, sources, errors = collect(params)
    size = None
    if not module.check_mode:
        try:
            size = write_bundle(params["dest"], members)
        except (BundleError, OSError) as exc:
            module.fail_json(msg="container_logs: %s" % exc, sources=sources, errors=errors)
    module.exit_json(changed=True, dest=params["dest"], size=size, sources=sources, errors=errors)


if __name__ == "__main__":
    main()
