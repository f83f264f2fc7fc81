#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_check
short_description: Probe a URL as an uptime monitor does, alerting only after consecutive failures
version_added: 0.1.0
description:
  - The guide's C(curl https://example.com/health/), made an uptime check. The URL is fetched up to O(attempts) times,
    O(delay) seconds apart, until it answers one of O(expect_status). The guide's uptime rule alerts after three
    consecutive failures, so a single failed attempt is reported in RV(attempts) but raises no alert; only when every
    attempt failed is a critical alert raised.
  - A slow answer (over O(slow_seconds)) raises a warning.
  - O(connect_to) sends the connection to another address, as C(curl --resolve) does, while the Host header and the
    TLS certificate check still use the URL's name; so the site can be checked through its nginx from the host itself.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads (GET requests); it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description: The URL to fetch, C(http://) or C(https://).
    type: str
    required: true
  connect_to:
    description: Address (IP or name) to connect to instead of the URL's host; the port stays the URL's.
    type: str
  ca_path:
    description: CA bundle (PEM) to check the server's certificate against, instead of the system's.
    type: path
  validate_certs:
    description: Check the server's TLS certificate and name.
    type: bool
    default: true
  attempts:
    description: How many times to try before the check fails (the guide's rule is 3 consecutive failures).
    type: int
    default: 3
  delay:
    description: Seconds between attempts.
    type: float
    default: 5
  timeout:
    description: Seconds one attempt may take to connect and to answer.
    type: float
    default: 10
  expect_status:
    description: HTTP statuses that count as healthy.
    type: list
    elements: int
    default: [200]
  slow_seconds:
    description: Warn when the successful attempt took longer than this many seconds; V(0) never warns.
    type: float
    default: 2
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: /health/ through the host's nginx, as visitors reach it
  webstack.ops.http_check:
    url: https://example.com/health/
    connect_to: 127.0.0.1
  register: health
"""

RETURN = r"""
ok:
  description: Whether an attempt answered one of O(expect_status).
  returned: success
  type: bool
  sample: true
status:
  description: The HTTP status of the last attempt (null when it got no answer).
  returned: success
  type: int
  sample: 200
seconds:
  description: How long the last attempt took.
  returned: success
  type: float
  sample: 0.042
attempts:
  description: Every attempt, in order, with its status (null without an answer), seconds and error.
  returned: success
  type: list
  elements: dict
  sample: [{"status": 503, "seconds": 0.01, "error": null}, {"status": 200, "seconds": 0.02, "error": null}]
alerts:
  description: A critical C(http_down) alert when every attempt failed, a C(http_slow) warning for a slow answer.
  returned: success
  type: list
  elements: dict
level:
  description: The worst alert level, V(ok) without alerts.
  returned: success
  type: str
  sample: ok
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert, worst_level
from ansible_collections.webstack.ops.plugins.module_utils._http_check import Probe, probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            connect_to=dict(type="str"),
            ca_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            attempts=dict(type="int", default=3),
            delay=dict(type="float", default=5),
            timeout=dict(type="float", default=10),
            expect_status=dict(type="list", elements="int", default=[200]),
            slow_seconds=dict(type="float", default=2),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["attempts"] < 1 or params["delay"] < 0 or params["timeout"] <= 0:
        module.fail_json(msg="attempts must be at least 1, delay 0 or more and timeout more than 0")
    try:
        checker = Probe(params["url"], connect_to=params["connect_to"], ca_path=params["ca_path"],
                        validate_certs=params["validate_certs"], timeout=params["timeout"])
    except (ValueError, OSError) as exc:  # a bad URL, or a CA file that cannot be read
        module.fail_json(msg="cannot check %s: %s" % (params["url"], exc))
    ok, tries = probe(checker, params["attempts"], params["delay"], set(params["expect_status"]))
    last = tries[-1]
    where = params["url"] + (" at %s" % params["connect_to"] if params["connect_to"] else "")
    alerts = []
    if not ok:
        answer = "HTTP %s" % last["status"] if last["status"] is not None else last["error"]
        alerts.append(alert("http_down", CRIT, last["status"], sorted(params["expect_status"]),
                            "%s failed %d consecutive attempt(s), last: %s" % (where, len(tries), answer)))
    elif params["slow_seconds"] and last["seconds"] > params["slow_seconds"]:
        alerts.append(alert("http_slow", WARN, last["seconds"], params["slow_seconds"],
                            "%s answered in %.2f s (warn over %s s)" % (where, last["seconds"], params["slow_seconds"])))
    module.exit_json(changed=False, ok=ok, status=last["status"], seconds=last["seconds"], attempts=tries,
                     alerts=alerts, level=worst_level(alerts))


if __name__ == "__main__":
    main()
