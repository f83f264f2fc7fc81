# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by the S3 backup modules of this collection.
    DOCUMENTATION = r"""
options:
  bucket:
    description:
      - Bucket the backups live in.
    type: str
    required: true
  endpoint_url:
    description:
      - URL of an S3-compatible server (SeaweedFS, MinIO, Ceph). Omitted, AWS S3.
      - With an endpoint, path-style addressing is used.
    type: str
    aliases: [s3_url]
  region:
    description:
      - Region of the bucket.
    type: str
    default: us-east-1
    aliases: [aws_region]
  access_key:
    description:
      - Access key ID. Omitted, boto3 finds credentials the usual way (environment variables,
        shared credentials file, instance profile).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - Secret access key. Never logged nor returned.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description:
      - Session token for temporary credentials. Never logged nor returned.
    type: str
    aliases: [aws_session_token]
  validate_certs:
    description:
      - Verify the server's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description:
      - File of certificate authorities to verify the server's certificate with.
    type: path
requirements:
  - boto3 (Debian C(python3-boto3), or C(boto3) from PyPI) on the managed host.
notes:
  - Connection options can be set once for all S3 modules of this collection with
    C(module_defaults) and the action group C(group/webstack.ops.s3).
"""
