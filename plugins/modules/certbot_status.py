#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certbot_status
short_description: Certificates managed by certbot, what the web server serves, renewal and dry run
version_added: 0.1.0
description:
  - Reads every certificate lineage certbot manages under O(config_dir) (C(renewal/NAME.conf) and the certificate it
    names, C(live/NAME/cert.pem)) with the C(cryptography) library. Per certificate it returns the names (subject
    alternative names), issuer, serial, SHA-256 fingerprint, validity, days left, key type, and the renewal settings
    of C(renewal/NAME.conf) (ACME server, authenticator, webroot, hooks, C(renew_before_expiry)).
  - Then it fetches the certificate the web server actually serves for each name (TLS with the name as SNI on
    O(serve_port), at O(connect_to) if set, as C(curl --resolve) does) and compares it with the one on disk. A
    certificate renewed on disk but not served (the web server was not reloaded) is a C(cert_not_served) alert; a
    server that cannot be reached is a C(cert_unreachable) alert; a served certificate that does not verify against
    O(ca_path) (or the system's CAs) is a C(cert_untrusted) alert.
  - Alerts C(cert_expiry) when a certificate has O(warn_days) or fewer days left (warn) or O(crit_days) or fewer
    (crit). RV(level) is the worst alert level.
  - O(renew=true) runs C(certbot renew --cert-name NAME) for each name. certbot renews only a certificate due for
    renewal (within its C(renew_before_expiry), 30 days by default) unless O(force_renewal=true). A deploy hook tests
    the nginx configuration (O(nginx_test_command)) and only then reloads nginx (O(nginx_reload_command)); certbot
    exits 0 when a hook fails, so its output is read and a failed hook fails the task (the renewed certificate is then
    on disk but not served).
  - O(dry_run=true) runs C(certbot renew --dry-run) for each name, against O(acme_server) when it is set (never Let's
    Encrypt's staging then). Nothing changes on disk.
  - C(changed) is true only when a certificate on disk changed (its serial before and after differ).
notes:
  - certbot's files are root's (C(/etc/letsencrypt/archive) is mode 0700); run the task with C(become).
  - certbot saves the deploy hook of a renewal in the lineage's renewal configuration (C(renew_hook)), so certbot's own
    timer reloads nginx the same way afterwards.
  - A failed renewal leaves the current certificate in place; the task fails with certbot's output, the last lines of its
    log and, when the ACME server does not answer, that cause.
  - "When the lineage's ACME server is not Let's Encrypt and O(acme_server) is not set, the dry run goes to the lineage's
    own server, not to Let's Encrypt's staging."
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The certificates and what is served are read the same; certbot is not run. RV(would_renew) lists the
        certificates a renewal would renew (due, or all with O(force_renewal)), RV(commands) what would run, and
        C(changed) is true if any would be renewed.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  config_dir:
    description: certbot's configuration directory (C(--config-dir)).
    type: path
    default: /etc/letsencrypt
  work_dir:
    description: certbot's working directory (C(--work-dir)), for a renewal or a dry run.
    type: path
    default: /var/lib/letsencrypt
  logs_dir:
    description: certbot's log directory (C(--logs-dir)); the tail of its C(letsencrypt.log) is shown when certbot fails.
    type: path
    default: /var/log/letsencrypt
  names:
    description:
      - Lineages (certbot's certificate names, C(certbot certificates) lists them) to read, check and renew; by default
        every lineage under O(config_dir).
      - A name that is not a lineage fails the task, naming the lineages there are.
    type: list
    elements: str
  warn_days:
    description: Warn when a certificate on disk has this many days left or fewer.
    type: float
    default: 30
  crit_days:
    description: Critical when a certificate on disk has this many days left or fewer (or has expired).
    type: float
    default: 7
  check_served:
    description: Fetch and compare what the web server serves for each certificate.
    type: bool
    default: true
  serve_host:
    description:
      - The name asked for (SNI) and checked; by default the lineage's name when the certificate covers it, else its
        first name.
    type: str
  serve_port:
    description: The HTTPS port of the web server.
    type: int
    default: 443
  connect_to:
    description: Address (IP or name) to connect to instead of the name itself, the name still sent as SNI and checked.
    type: str
  ca_path:
    description: CA bundle (PEM) the served certificate is verified against, instead of the system's.
    type: path
  validate_certs:
    description: Verify the served certificate's chain and name; V(false) only compares it with the one on disk.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the web server's TLS handshake.
    type: float
    default: 10
  renew:
    description: Run C(certbot renew) for each name; certbot renews only what is due unless O(force_renewal=true).
    type: bool
    default: false
  force_renewal:
    description: With O(renew=true), renew even a certificate that is not due (C(--force-renewal)).
    type: bool
    default: false
  dry_run:
    description: Run C(certbot renew --dry-run) for each name (after the renewal when O(renew=true)).
    type: bool
    default: false
  acme_server:
    description:
      - ACME directory URL passed to certbot as C(--server) for the renewal and the dry run; by default the renewal uses
        the lineage's own server.
    type: str
  acme_ca_path:
    description: CA bundle that verifies the ACME server's HTTPS (passed to certbot as C(REQUESTS_CA_BUNDLE)).
    type: path
  certbot_path:
    description: The certbot program, a name looked up on C(PATH) or a path.
    type: str
    default: certbot
  certbot_timeout:
    description: Seconds one certbot run may take before it is stopped.
    type: int
    default: 300
  deploy_hook:
    description:
      - Shell command certbot runs after it renewed a certificate (C(--deploy-hook)).
      - By default O(nginx_test_command) and, only if that succeeds, O(nginx_reload_command). An empty string passes
        no hook (certbot then runs the lineage's saved one, if any).
    type: str
  nginx_test_command:
    description: Command of the default deploy hook that tests nginx's configuration; a list of words or a shell string.
    type: raw
    default: [nginx, -t, -q]
  nginx_reload_command:
    description: Command of the default deploy hook that reloads nginx; a list of words or a shell string.
    type: raw
    default: [nginx, -s, reload]
  reload_wait:
    description: Seconds to wait, after a renewal, for the web server to serve the new certificate before it is reported as not served.
    type: float
    default: 10
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Certificates, days left and what nginx serves
  become: true
  webstack.ops.certbot_status:
  register: certs

- name: The guide's monthly renewal and dry run, nginx tested then reloaded
  become: true
  webstack.ops.certbot_status:
    renew: true
    dry_run: true

- name: A site whose name does not resolve here yet, checked through its nginx on this host
  webstack.ops.certbot_status:
    names: [www.example.com]
    connect_to: 127.0.0.1

- name: Renewal against another ACME server, nginx under its own prefix
  webstack.ops.certbot_status:
    config_dir: /srv/certbot/config
    work_dir: /srv/certbot/work
    logs_dir: /srv/certbot/logs
    renew: true
    acme_server: https://acme.internal.example/directory
    acme_ca_path: /etc/ssl/internal-ca.pem
    nginx_test_command: [nginx, -p, /srv/nginx/, -c, /srv/nginx/nginx.conf, -t]
    nginx_reload_command: [nginx, -p, /srv/nginx/, -c, /srv/nginx/nginx.conf, -s, reload]
"""

RETURN = r"""
certificates:
  description: One entry per lineage, after the renewal if there was one.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: certbot's name of the lineage.
      type: str
    domains:
      description: Names the certificate covers (subject alternative names).
      type: list
      elements: str
    issuer:
      description: The issuer's distinguished name.
      type: str
    serial:
      description: Serial number, upper-case hex.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint (C(AB:CD:...)).
      type: str
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
    days_left:
      description: Days until RV(certificates[].not_after), negative once expired.
      type: float
    key_type:
      description: C(rsa), C(ecdsa), C(ed25519) or C(ed448); with C(key_size) in bits and C(key_curve).
      type: str
    due:
      description: Whether certbot would renew it now (within C(renew_window_days) of its end, and auto-renewal on).
      type: bool
    renew_window_days:
      description: The lineage's C(renew_before_expiry) in days (30 by default).
      type: float
    renewal:
      description:
        - The renewal settings of C(renewal/NAME.conf) - C(authenticator), C(server), C(account), C(key_type),
          C(renew_before_expiry), C(autorenew), C(webroot_path), C(webroot_map), C(pre_hook), C(post_hook),
          C(deploy_hook).
      type: dict
    served:
      description:
        - What the web server serves for the name (when O(check_served)) - C(address), C(port), C(server_name),
          C(serial), C(fingerprint_sha256), C(not_after), C(days_left), C(issuer), C(matches) (the same certificate as on
          disk), C(verified) and C(verify_error), or C(error) when it could not be fetched.
      type: dict
    renewed:
      description: Whether this run renewed it (then C(previous_serial) is the serial before).
      type: bool
  sample: [{"name": "example.com", "domains": ["example.com", "www.example.com"], "issuer": "CN=R11,O=Let's Encrypt,C=US",
            "serial": "4A1B9C0D2E3F", "fingerprint_sha256": "12:AB:...", "not_before": "2026-10-01T08:00:00+00:00",
            "not_after": "2026-12-30T08:00:00+00:00", "days_left": 31.2, "key_type": "ecdsa", "key_size": 256,
            "key_curve": "secp256r1", "due": false, "renew_window_days": 30.0, "renewed": false,
            "renewal": {"authenticator": "webroot", "server": "https://acme-v02.api.letsencrypt.org/directory",
                        "webroot_path": ["/var/www/certbot"], "deploy_hook": "nginx -t -q && nginx -s reload"},
            "served": {"address": "example.com", "port": 443, "server_name": "example.com", "serial": "4A1B9C0D2E3F",
                       "matches": true, "verified": true, "days_left": 31.2}}]
alerts:
  description:
    - Alerts raised, empty when all is well. C(check) is C(cert_expiry), C(cert_not_served), C(cert_unreachable),
      C(cert_untrusted), C(cert_unreadable) or C(cert_missing) (no lineage at all).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "cert_expiry", "level": "warn", "value": 21.5, "threshold": 30,
            "message": "certificate example.com expires in 21.50 days (2026-12-20T08:00:00+00:00; warn from 30 days)"}]
level:
  description: The worst alert level, V(ok) when there is none.
  returned: always
  type: str
  sample: ok
due:
  description: Names due for renewal before this run (by their C(renew_before_expiry)).
  returned: success
  type: list
  elements: str
renewed:
  description: Names whose certificate this run renewed (changed on disk).
  returned: always
  type: list
  elements: str
would_renew:
  description: In check mode with O(renew=true), the names a renewal would renew.
  returned: check mode with renew
  type: list
  elements: str
commands:
  description:
    - The certbot runs, in order, with C(name), C(action) (C(renew) or C(dry_run)), C(argv), C(rc) (null in check mode,
      where nothing runs) and the last lines of C(output).
  returned: always
  type: list
  elements: dict
notes:
  description: What could not be judged and why, when it is not an alert.
  returned: success
  type: list
  elements: str
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils import _certbot as cb
from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert, worst_level

LETSENCRYPT = "api.letsencrypt.org"
ARGUMENT_SPEC = dict(
    config_dir=dict(type="path", default="/etc/letsencrypt"),
    work_dir=dict(type="path", default="/var/lib/letsencrypt"),
    logs_dir=dict(type="path", default="/var/log/letsencrypt"),
    names=dict(type="list", elements="str"),
    warn_days=dict(type="float", default=30),
    crit_days=dict(type="float", default=7),
    check_served=dict(type="bool", default=True),
    serve_host=dict(type="str"),
    serve_port=dict(type="int", default=443),
    connect_to=dict(type="str"),
    ca_path=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="float", default=10),
    renew=dict(type="bool", default=False),
    force_renewal=dict(type="bool", default=False),
    dry_run=dict(type="bool", default=False),
    acme_server=dict(type="str"),
    acme_ca_path=dict(type="path"),
    certbot_path=dict(type="str", default="certbot"),
    certbot_timeout=dict(type="int", default=300),
    deploy_hook=dict(type="str"),
    nginx_test_command=dict(type="raw", default=["nginx", "-t", "-q"]),
    nginx_reload_command=dict(type="raw", default=["nginx", "-s", "reload"]),
    reload_wait=dict(type="float", default=10),
)


def bad_option(params):
    """What is wrong with the options, or None."""
    for option in ("nginx_test_command", "nginx_reload_command"):
        value = params[option]
        words = isinstance(value, list) and value and all(isinstance(word, str) for word in value)
        if not words and not (isinstance(value, str) and value.strip()):
            return "%s must be a non-empty list of words or a shell command string, got %r" % (option, value)
    if not 1 <= params["serve_port"] <= 65535 or params["timeout"] <= 0 or params["certbot_timeout"] < 1 or params["reload_wait"] < 0:
        return "serve_port must be a TCP port, timeout more than 0, certbot_timeout at least 1 and reload_wait 0 or more"
    return cb.bad_thresholds(params["warn_days"], params["crit_days"])


class Run:
    """One task: the lineages before and after, the certbot runs, and a failure with what is known so far."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.commands = []
        self.renewed = []
        self.notes = []

    def fail(self, msg):
        self.module.fail_json(msg=msg, changed=bool(self.renewed), renewed=self.renewed, commands=self.commands)

    def read(self, names):
        """{name: lineage facts, or {"name", "error"} when it cannot be read}."""
        now = datetime.datetime.now(cb.UTC)
        lineages = {}
        for name in names:
            try:
                lineages[name] = cb.read_lineage(self.params["config_dir"], name, now)
            except cb.CertError as exc:
                lineages[name] = dict(name=name, error=str(exc))
        return lineages

    def names(self):
        """The lineages asked for (all by default); an unknown name fails, naming the ones there are."""
        try:
            existing = cb.lineage_names(self.params["config_dir"])
        except cb.CertError as exc:
            self.fail(str(exc))
        unknown = [name for name in self.params["names"] or [] if name not in existing]
        if unknown:
            self.fail("no certbot lineage named %s under %s (renewal/NAME.conf); the lineages there: %s" % (
                ", ".join(unknown), self.params["config_dir"], ", ".join(existing) or "none"))
        return list(dict.fromkeys(self.params["names"] or existing)), existing

    def certbot(self):
        path = self.params["certbot_path"]
        found = path if os.sep in path else self.module.get_bin_path(path)
        if not found or not os.access(found, os.X_OK):
            self.fail("certbot not found (%s): install it (apt-get install certbot) or set certbot_path" % path)
        return found

    def argv(self, certbot, name, lineage, dry_run):
        params = self.params
        server = params["acme_server"]
        if dry_run and not server:
            own = (lineage.get("renewal") or {}).get("server")
            server = own if own and LETSENCRYPT not in own else None  # without --server a dry run goes to Let's Encrypt's staging
        hook = params["deploy_hook"]
        if hook is None:
            hook = cb.nginx_deploy_hook(params["nginx_test_command"], params["nginx_reload_command"])
        return cb.certbot_argv(certbot, "renew", name, config_dir=params["config_dir"], work_dir=params["work_dir"],
                               logs_dir=params["logs_dir"], acme_server=server, force=params["force_renewal"], dry_run=dry_run,
                               deploy_hook=hook or None)

    def run_certbot(self, name, action, argv, lineage):
        """Run certbot once; a non-zero exit fails the task with certbot's words, its log, and a silent ACME server named."""
        rc, output = cb.run_certbot(argv, cb.certbot_env(self.params["acme_ca_path"]), self.params["certbot_timeout"])
        self.commands.append(dict(name=name, action=action, argv=argv, rc=rc, output=cb.tail(output)))
        if rc == 0:
            return output
        server = argv[argv.index("--server") + 1] if "--server" in argv else (lineage.get("renewal") or {}).get("server")
        down = cb.acme_unreachable(server, self.params["acme_ca_path"]) if server else None
        self.fail("certbot renew%s of %s (ACME server %s) failed (%s)%s%s.\n%s\n%s" % (
            " --dry-run" if action == "dry_run" else "", name, server or "certbot's default",
            "exit %s" % rc if rc is not None else "timed out",
            "; the ACME server %s does not answer (%s)" % (server, down) if down else "",
            "" if action == "dry_run" else "; the certificate on disk is unchanged (serial %s)" % lineage.get("serial"),
            cb.tail(output), cb.log_tail(self.params["logs_dir"])))
        return None

    def renew(self, certbot, names, before):
        """certbot renew per name; a failed deploy hook fails the task (certbot itself exits 0 then)."""
        for name in names:
            output = self.run_certbot(name, "renew", self.argv(certbot, name, before[name], dry_run=False), before[name])
            after = self.read([name])[name]
            if after.get("serial") != before[name].get("serial"):
                self.renewed.append(name)
            failure = cb.hook_failure(output)
            if failure:
                self.fail("%s: the deploy hook failed, so the web server was not reloaded%s. certbot says:\n%s\nFix the web server's "
                          "configuration (nginx -t), then reload it.\n%s" % (
                              name, " and still serves the previous certificate (renewed on disk: serial %s, was %s)" % (
                                  after.get("serial"), before[name].get("serial")) if name in self.renewed else "",
                              failure, cb.log_tail(self.params["logs_dir"])))

    def served(self, lineage, wait):
        """What the server serves for the lineage; after a renewal, waits up to `wait` seconds for the reload to show."""
        params = self.params
        name = cb.server_name_for(lineage, params["serve_host"])

        def fetch():
            return cb.served_certificate(params["connect_to"] or name, params["serve_port"], name, ca_path=params["ca_path"],
                                         validate=params["validate_certs"], timeout=params["timeout"])

        found = cb.wait_until_served(lineage, fetch, timeout=wait) if wait else fetch()
        if not found.get("error"):
            found["matches"] = found["fingerprint_sha256"] == lineage["fingerprint_sha256"]
        return found

    def report(self, names, lineages, before):
        """(certificates, alerts) of the lineages as they are now."""
        certificates, alerts = [], []
        for name in names:
            lineage = lineages[name]
            if "error" in lineage:
                alerts.append(alert("cert_unreadable", CRIT, None, None, lineage["error"]))
                certificates.append(lineage)
                continue
            self.notes.extend(lineage.pop("notes"))
            lineage["renewed"] = name in self.renewed
            if lineage["renewed"]:
                lineage["previous_serial"] = before[name].get("serial")
            if self.params["check_served"]:
                lineage["served"] = self.served(lineage, self.params["reload_wait"] if lineage["renewed"] else 0)
            alerts.extend(cb.lineage_alerts(lineage, self.params["warn_days"], self.params["crit_days"]))
            certificates.append(lineage)
        return certificates, alerts


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params, check = module.params, module.check_mode
    run = Run(module)
    if cb.x509 is None:
        run.fail("certbot_status needs the Python library cryptography on the managed host (python3-cryptography, or "
                 "pip install cryptography; the prerequisites role installs it)")
    problem = bad_option(params)
    if problem:
        run.fail("%s. Nothing was read." % problem)
    names, existing = run.names()
    before = run.read(names)
    due = [name for name in names if before[name].get("due")]
    would_renew = [name for name in names if "error" not in before[name] and (params["force_renewal"] or before[name]["due"])]
    certbot = run.certbot() if (params["renew"] or params["dry_run"]) and not check else params["certbot_path"]

    if params["renew"] and check:
        run.commands.extend(dict(name=name, action="renew", argv=run.argv(certbot, name, before[name], False), rc=None, output="")
                            for name in names)
    elif params["renew"]:
        run.renew(certbot, names, before)
    if params["dry_run"]:
        for name in names:
            argv = run.argv(certbot, name, before[name], dry_run=True)
            if check:
                run.commands.append(dict(name=name, action="dry_run", argv=argv, rc=None, output=""))
            else:
                run.run_certbot(name, "dry_run", argv, before[name])

    certificates, alerts = run.report(names, before if check or not run.commands else run.read(names), before)
    if not existing:
        alerts.append(alert("cert_missing", WARN, 0, 1, "no certificate lineage under %s: certbot manages no certificate here"
                            % os.path.join(params["config_dir"], "renewal")))
    result = dict(changed=bool(run.renewed) or (check and params["renew"] and bool(would_renew)), certificates=certificates,
                  alerts=alerts, level=worst_level(alerts), due=due, renewed=run.renewed, commands=run.commands, notes=run.notes)
    if check and params["renew"]:
        result["would_renew"] = would_renew
    module.exit_json(**result)


if __name__ == "__main__":
    main()
