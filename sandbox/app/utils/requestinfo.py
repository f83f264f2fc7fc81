"""What the site records about a request: client address, fingerprint, headers, and whether it looks like a probe."""

import hashlib
import ipaddress

# Paths and user agents of vulnerability scanners and login probes (the site is not WordPress or PHP).
SUSPICIOUS_PATH_PARTS = ("wp-login.php", "/wp-admin", "/.env", "/.git/", "xmlrpc.php", "phpmyadmin", "config.php", "phpunit",
                         "/cgi-bin/", "/.aws/", "/server-status", "/actuator/")
SUSPICIOUS_AGENT_PARTS = ("sqlmap", "nuclei", "masscan", "zgrab", "nikto")
REDACTED_HEADERS = {"Cookie", "Authorization", "X-Csrftoken"}


def _valid_ip(text):
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_ip(request):
    """The client's address: REMOTE_ADDR, or the last X-Forwarded-For hop when a proxy on loopback (nginx) sent it."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and (remote is None or ipaddress.ip_address(remote).is_loopback):
        return _valid_ip(forwarded.split(",")[-1]) or remote
    return remote


def is_suspicious(request):
    path = request.path.lower()
    agent = request.META.get("HTTP_USER_AGENT", "").lower()
    return any(part in path for part in SUSPICIOUS_PATH_PARTS) or any(part in agent for part in SUSPICIOUS_AGENT_PARTS)


def fingerprint_fields(request):
    """The RequestFingerprint fields of a request (without is_suspicious)."""
    ip = client_ip(request)
    agent = request.META.get("HTTP_USER_AGENT", "")
    language = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    headers = {name: ("<redacted>" if name in REDACTED_HEADERS else value) for name, value in request.headers.items()}
    return {
        "fingerprint": hashlib.sha256(("%s|%s|%s" % (ip, agent, language)).encode()).hexdigest(),
        "ip_address": ip,
        "user_agent": agent,
        "path": request.get_full_path()[:2000],
        "method": request.method[:8],
        "headers": headers,
    }
