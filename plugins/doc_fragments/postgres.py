# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every PostgreSQL module of this collection,
    # named as community.postgresql names them.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host running PostgreSQL.
      - Ignored when O(login_unix_socket) is set.
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description:
      - Port PostgreSQL listens on.
    type: int
    default: 5432
    aliases: [port]
  login_user:
    description:
      - Role to connect as.
    type: str
    default: postgres
    aliases: [login]
  login_password:
    description:
      - Password of O(login_user). Never logged nor returned.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Directory of the PostgreSQL Unix domain socket, for local connections.
      - When set, it is used instead of O(login_host).
    type: str
    default: ''
    aliases: [unix_socket]
  login_db:
    description:
      - Database to connect to, which is the database the module works on.
    type: str
    default: postgres
    aliases: [db, database]
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
  ssl_mode:
    description:
      - libpq's C(sslmode). See U(https://www.postgresql.org/docs/current/libpq-ssl.html).
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File of certificate authorities to verify the server's certificate with.
    type: path
    aliases: [ssl_rootcert]
requirements:
  - psycopg2 (Debian C(python3-psycopg2), or C(psycopg2-binary) from PyPI) on the managed host.
notes:
  - Connection options can be set once for all PostgreSQL modules of this collection with
    C(module_defaults) and the action group C(group/webstack.ops.postgres).
"""
