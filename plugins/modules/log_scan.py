#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_scan
short_description: Count and sample patterns (ERROR, slow requests, 401/403, POST /admin) in logs
version_added: 0.1.0
description:
  - Reads log files (rotated and gzipped copies included) and container logs through the Docker SDK, counts the
    lines matching each pattern, and keeps a sample of the distinct messages with their counts.
  - Messages are grouped after numbers, ids, hex strings, IP addresses and timestamps are replaced, so a message
    repeated with different values counts as one; each group keeps one real line as its example.
  - Logs are streamed line by line (gzip too); memory stays bounded whatever their size.
  - O(since) leaves out older lines of nginx access (C([29/Nov/2026:10:00:00 +0000])) and error logs, Django,
    Celery or other Python logging (C(2026-11-29 10:00:00,123)) and ISO 8601 logs; container log lines are cut by
    Docker's own timestamps.
  - O(state_file) keeps where this run stopped (per file its inode, offset and a fingerprint of its first bytes,
    per container the time of the last line), so the next run reads only what is new. A file rotated since
    (renamed, or copied and truncated) is found again among its rotated copies and read past the old offset.
  - Counts are compared with per-pattern thresholds and returned as RV(alerts).
notes:
  - The task never reports C(changed); writing O(state_file) is bookkeeping and is reported as RV(state_updated).
  - Run as a user who may read the logs (often C(become) or group C(adm)) and, for O(containers), use the Docker
    socket.
  - Timestamps without a time zone (Python logging's default) are read in the managed host's local time.
  - A log is assumed to be written in time order. With O(since), lines are left out until the first one at or
    after O(since); lines without a timestamp before it (a traceback's lines) belong to older entries and are
    left out too. Files last written before O(since) are not opened.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads and counts as usual but does not write O(state_file); RV(state_would_update) tells whether it would.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  paths:
    description:
      - Log files or globs (C(/var/log/nginx/*.log)).
      - With O(include_rotated=true), the rotated copies of each file are read too, oldest first
        (C(access.log.2.gz), C(access.log.1), then C(access.log); also dated names like C(access.log-20261129.gz)).
        A glob that matches rotated copies files them under their live file, so no line is read twice.
      - A path that does not exist fails the task, unless O(allow_missing=true).
    type: list
    elements: path
    default: []
  containers:
    description:
      - Names of containers whose logs (stdout and stderr) are read through the Docker engine at O(docker_host).
    type: list
    elements: str
    default: []
  include_rotated:
    description: Read the rotated copies of each file of O(paths) too (on a run without a mark for that file).
    type: bool
    default: true
  allow_missing:
    description: Leave out paths and globs that match nothing (listed in RV(missing)) instead of failing.
    type: bool
    default: false
  patterns:
    description:
      - What to count, each a dict with C(name) and C(regex) (Python syntax, searched anywhere in the line;
        C((?i)) makes it case-insensitive). Names must be unique.
      - Given, it replaces the defaults. The defaults are C(error) (C(\bERROR\b)), C(slow_request)
        (C(slow request), the app's slow request log lines), C(auth_failure) (status 401 or 403 in a combined
        format access log) and C(admin_post) (C("POST /admin) in an access log).
      - A regex of ASCII characters runs on the raw bytes, where C(\w), C(\d), C(\s) and C(\b) are ASCII-only;
        one with other characters runs on the text decoded as UTF-8.
      - An invalid regex fails the task, naming the pattern.
    type: list
    elements: dict
  thresholds:
    description:
      - Per pattern name, the counts that raise a C(warn) and a C(crit) alert, as C({warn, crit}) (either may be
        left out). An entry replaces that pattern's default; an empty dict turns its alerts off.
      - Defaults are C(error) warn 1 crit 50, C(slow_request) warn 10 crit 100, C(auth_failure) warn 50 crit 500,
        C(admin_post) warn 100; patterns of your own alert only when given here.
    type: dict
    default: {}
  since:
    description:
      - Count only lines at or after this time, an ISO timestamp (C(2026-11-29T10:00:00Z); without a zone, local
        time) or an age (C(30m), C(24h), C(7d), C(2w)).
      - With O(state_file), it also holds for the first run and for lines after the mark.
    type: str
  state_file:
    description:
      - File on the managed host keeping where this run stopped, so the next run reads only new lines. Created
        (mode 0600, with its directory) on the first run; other files' and containers' marks in it are kept.
      - Not written in check mode.
    type: path
  sample_size:
    description: How many of the most frequent distinct messages to return per pattern.
    type: int
    default: 5
  example_chars:
    description: Longest message and example line returned, in characters (longer ones are cut).
    type: int
    default: 300
  docker_host:
    description:
      - Docker engine URL for O(containers) (C(unix:///var/run/docker.sock), C(tcp://127.0.0.1:2375)).
      - Omitted, C(DOCKER_HOST) or the default socket.
    type: str
  docker_timeout:
    description: Seconds to wait for the Docker engine's answers.
    type: int
    default: 60
requirements:
  - Docker SDK for Python (C(docker), Debian C(python3-docker)) on the managed host, for O(containers) only.
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Errors, slow requests, 401/403 and admin posts of the last day
  webstack.ops.log_scan:
    paths:
      - /var/log/nginx/access.log
      - /srv/webstack/logs/django.log
    containers: [website, celery_worker]
    since: 24h
  register: logs

- name: Only what is new since the last run, with a stricter error threshold and one more pattern
  webstack.ops.log_scan:
    paths: [/var/log/nginx/*.log]
    state_file: /var/lib/webstack-ops/log_scan.json
    patterns:
      - {name: error, regex: '\bERROR\b'}
      - {name: upstream_timeout, regex: 'upstream timed out'}
    thresholds:
      error: {warn: 1, crit: 10}
      upstream_timeout: {warn: 5}
"""

RETURN = r"""
patterns:
  description: Per pattern name, what matched.
  returned: success
  type: dict
  contains:
    regex:
      description: The pattern's regex.
      type: str
    count:
      description: Lines that matched.
      type: int
    sources:
      description: Matching lines per source (file path or container name).
      type: dict
    samples:
      description: The most frequent distinct messages (up to O(sample_size)), with their counts and one real line.
      type: list
      elements: dict
    distinct:
      description: Distinct messages seen (at most 1000 are kept per pattern).
      type: int
    ungrouped:
      description: Matching lines left out of the samples because 1000 distinct messages were already kept.
      type: int
  sample:
    error:
      regex: \bERROR\b
      count: 3
      sources: {/srv/webstack/logs/django.log: 3}
      samples:
        - message: "<time> ERROR django.request Internal Server Error: /error/"
          count: 3
          example: "2026-11-29 10:00:03,789 ERROR django.request Internal Server Error: /error/"
      distinct: 1
      ungrouped: 0
sources:
  description: What each source read.
  returned: success
  type: list
  elements: dict
  sample:
    - name: /var/log/nginx/access.log
      type: file
      bytes_read: 20480
      lines_read: 100
      lines_skipped: 0
      files: [{path: /var/log/nginx/access.log.1, from: 5120, bytes: 1024}, {path: /var/log/nginx/access.log, from: 0, bytes: 19456}]
      notes: ["rotated since the last run: read /var/log/nginx/access.log.1 from byte 5120"]
missing:
  description: Paths and globs that matched nothing (with O(allow_missing=true)).
  returned: success
  type: list
  elements: str
  sample: []
bytes_read:
  description: Bytes read in all (uncompressed).
  returned: success
  type: int
  sample: 20480
lines_read:
  description: Lines read in all.
  returned: success
  type: int
  sample: 100
lines_skipped:
  description: Lines left out as older than O(since) or, for containers, already read.
  returned: success
  type: int
  sample: 0
since:
  description: O(since) as UTC, or null.
  returned: success
  type: str
  sample: "2026-11-28T10:00:00Z"
thresholds:
  description: The thresholds in use, per pattern.
  returned: success
  type: dict
  sample: {error: {warn: 1, crit: 50}}
state_updated:
  description: Whether O(state_file) was written (never in check mode).
  returned: success
  type: bool
  sample: true
state_would_update:
  description: Whether the marks moved, so that a run outside check mode writes O(state_file).
  returned: success
  type: bool
  sample: true
alerts:
  description: Patterns whose count reached a threshold, each with check C(log_<pattern>), level, value, threshold and message.
  returned: success
  type: list
  elements: dict
  sample: [{check: log_error, level: warn, value: 3, threshold: 1, message: "3 log line(s) matched error ..."}]
level:
  description: The worst alert level, C(ok), C(warn) or C(crit).
  returned: success
  type: str
  sample: warn
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level
from ansible_collections.webstack.ops.plugins.module_utils._docker import DOCKER_HINT, DOCKER_IMPORT_ERROR, docker
from ansible_collections.webstack.ops.plugins.module_utils._log_scan import (
    DEFAULT_PATTERNS,
    ScanError,
    docker_client,
    pattern_alerts,
    run_scan,
)
from ansible_collections.webstack.ops.plugins.module_utils._state_file import StateFileError, keep_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=[]),
            containers=dict(type="list", elements="str", default=[]),
            include_rotated=dict(type="bool", default=True),
            allow_missing=dict(type="bool", default=False),
            patterns=dict(type="list", elements="dict"),
            thresholds=dict(type="dict", default={}),
            since=dict(type="str"),
            state_file=dict(type="path"),
            sample_size=dict(type="int", default=5),
            example_chars=dict(type="int", default=300),
            docker_host=dict(type="str"),
            docker_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    if params["patterns"] is None:
        params["patterns"] = [dict(p) for p in DEFAULT_PATTERNS]
    for name in ("sample_size", "example_chars", "docker_timeout"):
        if params[name] < 1:
            module.fail_json(msg="%s must be 1 or more, got %s. Nothing was read." % (name, params[name]))

    client = None
    try:
        if params["containers"]:
            if docker is None:
                module.fail_json(msg=missing_required_lib("docker", reason=DOCKER_HINT), exception=DOCKER_IMPORT_ERROR)
            client = docker_client(params["docker_host"], params["docker_timeout"])
        result, new_state = run_scan(params, client)
        updated = keep_state(params["state_file"], new_state, module.check_mode)
    except (ScanError, StateFileError) as exc:
        module.fail_json(msg="log_scan: %s. The state file was not changed." % exc)
    finally:
        if client is not None:
            client.close()

    alerts = pattern_alerts(result["patterns"], result["thresholds"], result["since"])
    module.exit_json(changed=False, state_updated=updated, state_would_update=new_state is not None,
                     alerts=alerts, level=worst_level(alerts), **result)


if __name__ == "__main__":
    main()
