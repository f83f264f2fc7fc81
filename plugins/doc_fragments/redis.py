# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every Redis module of this collection.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host running Redis.
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description:
      - Port Redis listens on.
    type: int
    default: 6379
    aliases: [port]
  login_user:
    description:
      - ACL user to log in as (Redis 6 and later). Omitted, the default user, which is what C(requirepass) protects.
    type: str
    aliases: [username]
  login_password:
    description:
      - Password of O(login_user), or the C(requirepass) password. Never logged nor returned.
      - Omitted, no C(AUTH) is sent.
    type: str
  db:
    description:
      - Database number to work on (C(SELECT)).
    type: int
    default: 0
  tls:
    description:
      - Connect with TLS (a server with C(tls-port), or a managed Redis with encryption in transit).
    type: bool
    default: false
  ca_cert:
    description:
      - File of certificate authorities to verify the server's certificate with, when O(tls=true).
      - Omitted, the system's trusted authorities.
    type: path
    aliases: [ca_certs]
  validate_certs:
    description:
      - Verify the server's certificate and host name when O(tls=true).
      - Set to V(false) only for a server whose certificate cannot be verified; the connection is then open to
        impersonation.
    type: bool
    default: true
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: float
    default: 10
  socket_timeout:
    description:
      - Seconds to wait for the answer to one command.
    type: float
    default: 30
requirements:
  - redis-py 4.3 or later (Debian C(python3-redis), or C(redis) from PyPI) on the managed host.
notes:
  - Connection options can be set once for all Redis modules of this collection with C(module_defaults) and
    the action group C(group/webstack.ops.redis).
  - Errors name the server (host, port, database, user) and what to check, never the password.
"""
