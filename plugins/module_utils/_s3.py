# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 connection handling shared by the backup modules (private to the collection).

Credentials left empty are found by boto3 the usual way (environment, shared config, instance profile).
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:
    boto3 = None
    BOTO3_IMPORT_ERROR = traceback.format_exc()
else:
    BOTO3_IMPORT_ERROR = None

BOTO3_HINT = "on Debian/Ubuntu install python3-boto3, elsewhere pip install boto3"

# Error codes that mean the credentials are wrong, not the request.
CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken", "InvalidToken"}


class S3Error(Exception):
    """An S3 call failed; the message says which stage, what failed and what to check (never a secret)."""


def s3_argument_spec():
    """The connection options of doc_fragments/s3.py, as an argument spec."""
    return dict(
        bucket=dict(type="str", required=True),
        endpoint_url=dict(type="str", aliases=["s3_url"]),
        region=dict(type="str", default="us-east-1", aliases=["aws_region"]),
        access_key=dict(type="str", aliases=["aws_access_key_id"], no_log=True),
        secret_key=dict(type="str", aliases=["aws_secret_access_key"], no_log=True),
        session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_bundle=dict(type="path"),
    )


def ensure_boto3(module):
    if boto3 is None:
        module.fail_json(msg=missing_required_lib("boto3", reason=BOTO3_HINT), exception=BOTO3_IMPORT_ERROR)


def s3_client(params, max_pool_connections=10):
    """A boto3 S3 client from the module's options; retries the standard way, path-style for S3-compatible servers."""
    config = botocore.config.Config(
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path"} if params.get("endpoint_url") else {},
    )
    verify = params.get("ca_bundle") or params.get("validate_certs", True)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=params.get("endpoint_url") or None,
        region_name=params.get("region") or None,
        aws_access_key_id=params.get("access_key") or None,
        aws_secret_access_key=params.get("secret_key") or None,
        aws_session_token=params.get("session_token") or None,
        verify=verify,
        config=config,
    )


def describe_target(params):
    where = params.get("endpoint_url") or "AWS S3 (%s)" % params.get("region")
    return "bucket %s at %s" % (params["bucket"], where)


def explain(exc, stage, params):
    """An S3Error naming the stage, the cause and what to check, for any boto3/botocore exception."""
    target = describe_target(params)
    if boto3 is not None and isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or code
        if code == "NoSuchBucket":
            hint = "the bucket does not exist: check the bucket name and the endpoint"
        elif code in CREDENTIAL_ERRORS:
            hint = "the credentials were refused: check access_key and secret_key (or the environment / instance profile)"
        elif code in ("AccessDenied", "403", "Forbidden"):
            hint = "access denied: check the credentials (access_key, secret_key) and the bucket policy"
        elif code == "NoSuchKey":
            hint = "no such object: check the key"
        elif code in ("404", "NotFound"):  # HEAD requests carry no error body, so only the status says what is missing
            hint = "not found: check the bucket name (and the key)"
        else:
            hint = "the server refused the request"
        return S3Error("%s failed on %s: %s (%s); %s" % (stage, target, message, code, hint))
    if boto3 is not None and isinstance(exc, botocore.exceptions.NoCredentialsError):
        return S3Error("%s failed on %s: no credentials found; set access_key and secret_key, or the environment" % (stage, target))
    if boto3 is not None and isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                                              botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return S3Error("%s failed on %s: the S3 server is unreachable (%s); check that it runs and endpoint_url" % (stage, target, exc))
    return S3Error("%s failed on %s: %s" % (stage, target, exc))
