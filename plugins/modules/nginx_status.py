#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_status
short_description: Whether nginx's configuration tests good and whether nginx runs, with alerts
version_added: 0.1.0
description:
  - The guide's C(nginx -t) and C(systemctl status nginx) in one read-only check. Runs the configuration test
    O(test_command) and reads O(pid_file), then whether the process it names is an nginx process.
  - RV(alerts) has a critical alert for a configuration that fails its test and for an nginx that does not run
    (no pid file, or a stale one).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  test_command:
    description: nginx's configuration test, as an argv list (for example with C(-p PREFIX -c CONF) for an nginx of its own).
    type: list
    elements: str
    default: [nginx, -t]
  pid_file:
    description: nginx's pid file.
    type: path
    default: /run/nginx.pid
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Is nginx fine?
  webstack.ops.nginx_status:
  register: nginx
"""

RETURN = r"""
config_ok:
  description: Whether the configuration test exited 0.
  returned: success
  type: bool
  sample: true
test_output:
  description: The test's output lines.
  returned: success
  type: list
  elements: str
  sample: ["nginx: the configuration file /etc/nginx/nginx.conf syntax is ok"]
running:
  description: Whether the pid file names a running nginx process.
  returned: success
  type: bool
  sample: true
pid:
  description: The process ID in the pid file, null without one.
  returned: success
  type: int
  sample: 1234
alerts:
  description: Problems found, each with check, level, value, threshold and message.
  returned: success
  type: list
  elements: dict
  sample: [{"check": "nginx_down", "level": "crit", "value": null, "threshold": null,
            "message": "nginx does not run (pid file /run/nginx.pid: No such file or directory)"}]
level:
  description: The worst alert level, V(ok) without alerts.
  returned: success
  type: str
  sample: ok
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level
from ansible_collections.webstack.ops.plugins.module_utils._nginx_status import alerts, master, output_lines


def main():
    module = AnsibleModule(
        argument_spec=dict(
            test_command=dict(type="list", elements="str", default=["nginx", "-t"]),
            pid_file=dict(type="path", default="/run/nginx.pid"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["test_command"]:
        module.fail_json(msg="test_command is empty: give nginx's configuration test as an argv list (nginx -t).")
    try:
        rc, out, err = module.run_command(params["test_command"], handle_exceptions=False)
        test_output = output_lines(err, out)
    except OSError as exc:
        rc, test_output = None, ["cannot run %s: %s; check that nginx is installed and test_command" % (
            params["test_command"][0], exc.strerror or exc)]
    state = master(params["pid_file"])
    found = alerts(rc == 0, test_output, state)
    module.exit_json(changed=False, config_ok=rc == 0, test_output=test_output, running=state["running"], pid=state["pid"],
                     alerts=found, level=worst_level(found))


if __name__ == "__main__":
    main()
