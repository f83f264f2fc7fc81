"""Deterministic, realistic data shaped like the Django site's tables of the guide.

Used by the benchmarks and the sandbox seeder. Rows are produced by
`random.Random(seed)` only, so the same (table, rows, seed, now) always gives
the same rows, and they reach PostgreSQL through `COPY ... FROM STDIN` from a
file-like object that generates the text format chunk by chunk: memory stays
bounded whatever the row count.

Library use::

    import datagen
    datagen.create_tables(conn)                       # the four tables, if absent
    datagen.fill(conn, "pages_pagevisit", 100_000, seed=42)
    datagen.generate(conn, {"pages_pagevisit": 10_000, "blog_blogcomment": 500}, seed=42)
    datagen.create_table(conn, "pages_pagevisit", name="bench_t000")   # same shape, another name
    datagen.fill(conn, "pages_pagevisit", 20_000, seed=1, name="bench_t000")

Pure parts (no database): `iter_rows()` yields the values as Python objects,
`copy_text()` yields the COPY text, `RowStream` is the file-like object fed to
`copy_expert`.

Command line::

    python bench/datagen.py --dsn "host=127.0.0.1 port=5432 user=postgres dbname=site" --rows 100000 \
        [--table pages_pagevisit ...] [--seed 42] [--now 2025-01-01T00:00:00+00:00] [--schema public] [--suffix _x]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import sys
import time
import unicodedata
from collections.abc import Iterator

# Timestamps are spread uniformly over this window, ending at `now`.
WINDOW = dt.timedelta(days=3 * 365 + 1)  # three years, one of them a leap year
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_SEED = 42
CHUNK_ROWS = 2000  # rows generated per read() of the COPY stream

# ---------------------------------------------------------------- vocabularies

SECTIONS = ["blog", "services", "projects", "about", "contact", "pricing", "docs", "careers", "case-studies", "news"]
SLUG_WORDS = [
    "django", "postgres", "performance", "scaling", "redis", "celery", "caching", "nginx", "deploy", "docker",
    "python", "security", "backup", "monitoring", "lighthouse", "seo", "accessibility", "migrations", "queries",
    "indexes", "vacuum", "static", "files", "s3", "certificates", "https", "api", "rest", "graphql", "testing",
    "ci", "logging", "sentry", "uptime", "design", "frontend", "tailwind", "htmx", "forms", "admin", "search",
    "async", "websockets", "emails", "payments", "stripe", "analytics", "gdpr", "cookies", "sessions",
]
BLOG_SLUGS = [
    "-".join(random.Random(i).sample(SLUG_WORDS, 2 + i % 3)) for i in range(120)
]
STATIC_PATHS = ["/", "/about/", "/contact/", "/pricing/", "/services/", "/projects/", "/blog/", "/careers/",
                "/docs/", "/news/", "/privacy/", "/terms/", "/sitemap.xml", "/robots.txt", "/favicon.ico",
                "/health/", "/feed/", "/search/"]
SUSPICIOUS_PATHS = ["/wp-login.php", "/wp-admin/", "/.env", "/.git/config", "/xmlrpc.php", "/phpmyadmin/",
                    "/admin/login/", "/admin/", "/config.php", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                    "/cgi-bin/luci", "/.aws/credentials", "/server-status", "/actuator/env"]


def _site_paths():
    paths = list(STATIC_PATHS)
    paths += ["/blog/%s/" % slug for slug in BLOG_SLUGS]
    paths += ["/%s/%s/" % (SECTIONS[i % len(SECTIONS)], "-".join(random.Random(1000 + i).sample(SLUG_WORDS, 2)))
              for i in range(80)]
    paths += ["/blog/?page=%d" % n for n in range(2, 12)]
    paths += ["/search/?q=%s" % w for w in SLUG_WORDS[:20]]
    return paths


PATHS = _site_paths()

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 "
    "Edg/119.0.2151.97",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.193 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 "
    "Mobile Safari/537.36",
]
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
    "Mobile Safari/537.36 Chrome-Lighthouse",
]
SCANNER_AGENTS = [
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 zgrab/0.x",
    "sqlmap/1.7.11#stable (https://sqlmap.org)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
]
# Browsers most of the time, then crawlers, then scanners.
AGENT_MIX = USER_AGENTS * 12 + BOT_AGENTS * 3 + SCANNER_AGENTS
REFERERS = ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://t.co/",
            "https://www.linkedin.com/", "https://news.ycombinator.com/", "https://www.reddit.com/r/django/",
            "https://github.com/", "android-app://com.google.android.gm/"]
SITE = "https://www.example-agency.com"
ACCEPT_LANGUAGES = ["en-US,en;q=0.9", "en-GB,en;q=0.8", "fr-FR,fr;q=0.9,en;q=0.8", "de-DE,de;q=0.9,en;q=0.7",
                    "es-ES,es;q=0.9", "nl-NL,nl;q=0.9,en;q=0.8", "*"]
METHODS = ["GET"] * 40 + ["POST"] * 6 + ["HEAD"] * 3 + ["OPTIONS", "PUT", "DELETE"]

FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
               "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chen", "Aisha",
               "José", "Zoë", "Lukas", "Sofia", "Mateo", "Yuki", "Olga", "Ahmed", "Priya", "Björn", "Chloé", "Noah"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez", "Lopez",
              "Müller", "Schmidt", "Dubois", "Rossi", "Nakamura", "Kowalski", "Novak", "Silva", "Kim", "Nguyen",
              "O'Brien", "van der Berg", "Hansen", "Patel", "Ivanova", "Okafor"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "gmx.de", "hey.com",
                "example.org", "company.io"]
_WORDS = (
    "the a of to and in is it that for on with as this was but be at by not are from have or one had you "
    "database query index django postgres cache redis celery worker deploy server performance page load "
    "great post thanks really helpful article tried approach worked setup production issue problem fix "
    "migration model view template static file nginx config docker container backup restore vacuum "
    "analyze slow fast memory cpu latency request response user session cookie token security update "
    "version release upgrade question answer example code snippet explain clear simple better improve"
)
WORDS = _WORDS.split()
LIGHTHOUSE_AUDITS = [
    ("first-contentful-paint", "First Contentful Paint", "s"), ("largest-contentful-paint", "Largest Contentful Paint", "s"),
    ("total-blocking-time", "Total Blocking Time", "ms"), ("cumulative-layout-shift", "Cumulative Layout Shift", ""),
    ("speed-index", "Speed Index", "s"), ("interactive", "Time to Interactive", "s"),
    ("server-response-time", "Initial server response time was short", "ms"),
    ("render-blocking-resources", "Eliminate render-blocking resources", "ms"),
    ("unused-css-rules", "Reduce unused CSS", "ms"), ("unused-javascript", "Reduce unused JavaScript", "ms"),
    ("modern-image-formats", "Serve images in next-gen formats", "ms"),
    ("uses-optimized-images", "Efficiently encode images", "ms"), ("uses-text-compression", "Enable text compression", "ms"),
    ("uses-long-cache-ttl", "Serve static assets with an efficient cache policy", ""),
    ("dom-size", "Avoids an excessive DOM size", ""), ("bootup-time", "JavaScript execution time", "s"),
    ("mainthread-work-breakdown", "Minimize main-thread work", "s"), ("font-display", "All text remains visible during webfont loads", ""),
    ("image-alt", "Image elements have [alt] attributes", ""), ("color-contrast", "Background and foreground colors have a sufficient contrast ratio", ""),
    ("document-title", "Document has a <title> element", ""), ("meta-description", "Document has a meta description", ""),
    ("link-text", "Links have descriptive text", ""), ("is-crawlable", "Page isn't blocked from indexing", ""),
    ("is-on-https", "Uses HTTPS", ""), ("errors-in-console", "No browser errors logged to the console", ""),
    ("csp-xss", "Ensure CSP is effective against XSS attacks", ""), ("viewport", "Has a <meta name=\"viewport\"> tag", ""),
    ("html-has-lang", "<html> element has a [lang] attribute", ""), ("heading-order", "Heading elements appear in a sequentially-descending order", ""),
]

# ---------------------------------------------------------------- tables

COMMON = ["id bigserial PRIMARY KEY"]
TABLES = {
    "pages_pagevisit": [
        ("path", "text NOT NULL"), ("user_agent", "text NOT NULL"), ("ip_address", "inet"), ("referer", "text"),
        ("session_key", "varchar(40)"), ("response_ms", "integer NOT NULL"), ("created_at", "timestamptz NOT NULL"),
    ],
    "utils_requestfingerprint": [
        ("fingerprint", "varchar(64) NOT NULL"), ("ip_address", "inet"), ("user_agent", "text NOT NULL"),
        ("path", "text NOT NULL"), ("method", "varchar(8) NOT NULL"), ("is_suspicious", "boolean NOT NULL"),
        ("headers", "jsonb NOT NULL"), ("created_at", "timestamptz NOT NULL"),
    ],
    "utils_lighthouseresult": [
        ("url", "text NOT NULL"), ("performance_score", "integer NOT NULL"), ("accessibility_score", "integer NOT NULL"),
        ("best_practices_score", "integer NOT NULL"), ("seo_score", "integer NOT NULL"), ("raw", "jsonb NOT NULL"),
        ("created_at", "timestamptz NOT NULL"),
    ],
    "blog_blogcomment": [
        ("post_slug", "text NOT NULL"), ("author_name", "text NOT NULL"), ("author_email", "text NOT NULL"),
        ("content", "text NOT NULL"), ("is_approved", "boolean NOT NULL"), ("ip_address", "inet"),
        ("created_at", "timestamptz NOT NULL"),
    ],
}


def columns(table):
    """Column names of `table`, in COPY order (without `id`, which its sequence fills)."""
    return [name for name, _type in TABLES[table]]


def _check_table(table):
    if table not in TABLES:
        raise ValueError("unknown table %r; known: %s" % (table, ", ".join(TABLES)))


# ---------------------------------------------------------------- value helpers


_FIRST_OCTETS = [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)]


def _ip_pool(rng, size):
    """`size` plausible public IPv4 addresses (no private, loopback, multicast or reserved first octets)."""
    firsts = _FIRST_OCTETS
    nfirst = len(firsts)
    pool = []
    for _unused in range(size):
        r = rng.getrandbits(40)
        pool.append("%d.%d.%d.%d" % (firsts[(r >> 24) % nfirst], (r >> 16) & 255, (r >> 8) & 255, r % 254 + 1))
    return pool


def _pool_size(rows, cap):
    """Distinct visitors grow with the traffic: about one address per four rows, capped."""
    return min(cap, max(50, rows // 4))


def _day_strings(start_day, days):
    """ISO dates for day numbers start_day .. start_day + days (days since 1970-01-01)."""
    base = dt.date(1970, 1, 1)
    return [(base + dt.timedelta(days=start_day + i)).isoformat() for i in range(days + 2)]


_HMS = ["%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60) for s in range(86_400)]


class _Clock:
    """Timestamps uniform over [now - WINDOW, now], in increasing order (a site inserts rows as time goes by).

    Row i of n falls uniformly inside the i-th of n equal slices of the window,
    so the whole set is uniform, ids follow time like a real table, and the
    result does not depend on how the rows are chunked.
    """

    def __init__(self, now, rows):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.end_us = (now - EPOCH) // dt.timedelta(microseconds=1)
        self.span_us = WINDOW // dt.timedelta(microseconds=1)
        self.start_us = self.end_us - self.span_us
        self.step = self.span_us / max(rows, 1)
        self.first_day = self.start_us // 86_400_000_000
        self.days = _day_strings(self.first_day, self.span_us // 86_400_000_000 + 1)

    def text(self, i, u):
        """COPY text of the timestamp of row i, with u = rng.random()."""
        t = self.start_us + int((i + u) * self.step)
        t = min(t, self.end_us)
        day, us = divmod(t, 86_400_000_000)
        sec, frac = divmod(us, 1_000_000)
        return "%s %s.%06d+00" % (self.days[day - self.first_day], _HMS[sec], frac)

    def value(self, i, u):
        t = self.start_us + int((i + u) * self.step)
        return EPOCH + dt.timedelta(microseconds=min(t, self.end_us))


def _escape(text):
    """COPY text format escaping for free text (backslash, tab, newline, carriage return)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _sentence(rng, words):
    n = rng.randint(6, 18)
    body = " ".join(rng.choices(words, k=n))
    return body[0].upper() + body[1:] + rng.choice([".", ".", ".", "!", "?"])


def _paragraphs(rng):
    paras = []
    for _unused in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        paras.append(" ".join(_sentence(rng, WORDS) for _unused in range(rng.randint(1, 5))))
    return "\n\n".join(paras)


# ---------------------------------------------------------------- generators
# Each generator yields one tuple of COPY text fields per row ('\N' for NULL);
# `values=True` variants convert them to Python objects for tests and callers.

NULL = "\\N"
# Response times in ms, log-normal around ~75 ms with a long tail; rows pick from this fixed table (faster than
# drawing a log-normal per row).
_rt = random.Random(7)
_RESPONSE_MS = [str(int(_rt.lognormvariate(4.3, 0.7))) for _unused in range(8192)]
del _rt


def _gen_pagevisit(rng, clock, n):
    paths = PATHS
    npaths = len(paths)
    agents = AGENT_MIX
    ips = _ip_pool(rng, _pool_size(n, 20_000))
    nips = len(ips)
    refs = REFERERS
    site = SITE
    rand = rng.random
    bits = rng.getrandbits
    choice = rng.choice
    ts = clock.text
    resp = _RESPONSE_MS
    for i in range(n):
        # Popular pages get most of the traffic (skew towards the start of the vocabulary).
        path = paths[int(rand() ** 2.5 * npaths)]
        r = rand()
        if r < 0.45:
            referer = NULL
        elif r < 0.75:
            referer = choice(refs)
        else:
            referer = site + paths[int(rand() * npaths)]
        session = "%032x" % bits(128) if rand() < 0.8 else NULL
        yield (path, choice(agents), ips[int(rand() ** 2 * nips)], referer, session,
               resp[int(rand() * 8192)], ts(i, rand()))


def _gen_fingerprint(rng, clock, n):
    paths = PATHS
    npaths = len(paths)
    ips = _ip_pool(rng, _pool_size(n, 5000))
    nips = len(ips)
    rand = rng.random
    choice = rng.choice
    for i in range(n):
        ip = ips[int(rand() ** 2 * nips)]
        if rand() < 0.12:
            path = choice(SUSPICIOUS_PATHS)
            agent = choice(SCANNER_AGENTS + USER_AGENTS[:3])
            method = choice(["GET", "POST", "POST", "HEAD"])
            suspicious = path != "/admin/" or method == "POST" or agent in SCANNER_AGENTS
        else:
            path = paths[int(rand() ** 2.5 * npaths)]
            agent = choice(AGENT_MIX)
            method = choice(METHODS)
            suspicious = agent in SCANNER_AGENTS and rand() < 0.5
        headers = {
            "Host": "www.example-agency.com",
            "User-Agent": agent,
            "Accept": choice(["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "*/*",
                              "application/json"]),
            "Accept-Language": choice(ACCEPT_LANGUAGES),
            "Accept-Encoding": choice(["gzip, deflate, br", "gzip", "identity"]),
            "X-Forwarded-For": ip,
            "X-Forwarded-Proto": "https",
        }
        if rand() < 0.6:
            headers["Cookie"] = "sessionid=%032x; csrftoken=%032x" % (rng.getrandbits(128), rng.getrandbits(128))
        if method == "POST":
            headers["Content-Type"] = choice(["application/x-www-form-urlencoded", "application/json",
                                              "multipart/form-data; boundary=----WebKitFormBoundary"])
        fingerprint = hashlib.sha256(("%s|%s|%s" % (ip, agent, headers["Accept-Language"])).encode()).hexdigest()
        yield (fingerprint, ip, agent, path, method, "t" if suspicious else "f",
               _escape(json.dumps(headers, ensure_ascii=False, separators=(",", ":"))), clock.text(i, rand()))


def _gen_lighthouse(rng, clock, n):
    rand = rng.random
    urls = [SITE + p for p in STATIC_PATHS[:8]] + [SITE + "/blog/%s/" % s for s in BLOG_SLUGS[:12]]
    for i in range(n):
        url = rng.choice(urls)
        created = clock.text(i, rand())
        # Scores drift slowly and wobble per run.
        base = 55 + 35 * (i / max(n, 1))
        perf = max(0, min(100, int(rng.gauss(base, 9))))
        a11y = max(0, min(100, int(rng.gauss(91, 4))))
        best = max(0, min(100, int(rng.gauss(88, 6))))
        seo = max(0, min(100, int(rng.gauss(93, 5))))
        audits = {}
        for audit_id, title, unit in LIGHTHOUSE_AUDITS:
            score = round(min(1.0, max(0.0, rng.gauss(perf / 100, 0.2))), 2)
            entry = {"id": audit_id, "title": title, "score": score, "scoreDisplayMode": "numeric" if unit else "binary"}
            if unit == "s":
                value = round(rng.uniform(0.6, 6.5) * (1.6 - score), 3)
                entry.update(numericValue=value * 1000, numericUnit="millisecond", displayValue="%.1f s" % value)
            elif unit == "ms":
                value = int(rng.uniform(10, 1200) * (1.6 - score))
                entry.update(numericValue=value, numericUnit="millisecond", displayValue="Potential savings of %d ms" % value)
            audits[audit_id] = entry
        raw = {
            "lighthouseVersion": "11.4.0",
            "requestedUrl": url,
            "finalUrl": url,
            "fetchTime": created[:10] + "T" + created[11:23] + "Z",
            "userAgent": BOT_AGENTS[-1],
            "environment": {"networkUserAgent": BOT_AGENTS[-1], "benchmarkIndex": int(rng.gauss(1800, 150))},
            "configSettings": {"formFactor": rng.choice(["mobile", "desktop"]), "throttlingMethod": "simulate",
                               "onlyCategories": ["performance", "accessibility", "best-practices", "seo"]},
            "categories": {
                "performance": {"id": "performance", "score": perf / 100},
                "accessibility": {"id": "accessibility", "score": a11y / 100},
                "best-practices": {"id": "best-practices", "score": best / 100},
                "seo": {"id": "seo", "score": seo / 100},
            },
            "audits": audits,
            "timing": {"total": round(rng.uniform(8000, 25000), 1)},
        }
        yield (url, str(perf), str(a11y), str(best), str(seo),
               _escape(json.dumps(raw, ensure_ascii=False, separators=(",", ":"))), created)


def _gen_comment(rng, clock, n):
    rand = rng.random
    ips = _ip_pool(rng, _pool_size(n, 3000))
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = ("%s.%s" % (first, last)).lower().replace(" ", "").replace("'", "")
        local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
        if rand() < 0.3:
            local += str(rng.randint(1, 99))
        spam = rand() < 0.1
        content = _paragraphs(rng)
        if spam:
            content += "\n\nCheap pills and crypto at https://spam.example.net/?ref=%d" % rng.randint(1, 9999)
        yield (rng.choice(BLOG_SLUGS), _escape("%s %s" % (first, last)), "%s@%s" % (local, rng.choice(MAIL_DOMAINS)),
               _escape(content), "f" if spam or rand() < 0.07 else "t", rng.choice(ips), clock.text(i, rand()))


GENERATORS = {
    "pages_pagevisit": _gen_pagevisit,
    "utils_requestfingerprint": _gen_fingerprint,
    "utils_lighthouseresult": _gen_lighthouse,
    "blog_blogcomment": _gen_comment,
}


def _now(now):
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(timezone.utc)")
    return now


def _fields(table, rows, seed, now):
    _check_table(table)
    if rows < 0:
        raise ValueError("rows must be >= 0")
    now = _now(now)
    rng = random.Random("%s:%s" % (table, seed))
    return GENERATORS[table](rng, _Clock(now, rows), rows)


def copy_text(table, rows, seed=DEFAULT_SEED, now=None, chunk_rows=CHUNK_ROWS) -> Iterator[str]:
    """COPY text format of `rows` rows of `table`, as chunks of at most `chunk_rows` lines."""
    gen = _fields(table, rows, seed, now)
    chunk = []
    append = chunk.append
    for fields in gen:
        append("\t".join(fields))
        if len(chunk) >= chunk_rows:
            yield "\n".join(chunk) + "\n"
            chunk.clear()
    if chunk:
        yield "\n".join(chunk) + "\n"


def _unescape(text):
    out, i = [], 0
    mapping = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(mapping.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _convert(column_type, text):
    if text == NULL:
        return None
    kind = column_type.split()[0]
    if kind == "integer":
        return int(text)
    if kind == "boolean":
        return text == "t"
    if kind == "jsonb":
        return json.loads(_unescape(text))
    if kind == "timestamptz":
        return dt.datetime.fromisoformat(text + ":00")
    return _unescape(text)


def iter_rows(table, rows, seed=DEFAULT_SEED, now=None) -> Iterator[dict]:
    """The rows `fill` would load, as dicts of Python values (str, int, bool, dict, datetime; None for NULL)."""
    _check_table(table)
    types = TABLES[table]
    for fields in _fields(table, rows, seed, now):
        yield {name: _convert(ctype, text) for (name, ctype), text in zip(types, fields, strict=True)}


class RowStream:
    """Read-only file-like object producing the COPY text of a table, generated on demand.

    `copy_expert` calls read(size) until it returns b''; at most one chunk
    of rows (plus what is left of the previous one) is held in memory.
    """

    def __init__(self, table, rows, seed=DEFAULT_SEED, now=None, chunk_rows=CHUNK_ROWS):
        self._chunks = copy_text(table, rows, seed, now, chunk_rows)
        self._buf = b""
        self.bytes_read = 0

    def read(self, size=-1):
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk.encode("utf-8")
        if size < 0 or size >= len(self._buf):
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        self.bytes_read += len(data)
        return data


# ---------------------------------------------------------------- database side


def _ident(*parts):
    return ".".join('"%s"' % p.replace('"', '""') for p in parts)


def create_table(conn, table, schema="public", name=None):
    """Create one table shaped like `table` (Django-like DDL), named `name` (default: `table`), if absent."""
    _check_table(table)
    name = name or table
    cols = ",\n  ".join(COMMON + ["%s %s" % (_ident(col), ctype) for col, ctype in TABLES[table]])
    index = _ident("%s_created_at_idx" % name[:50])
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)" % (_ident(schema, name), cols))
        cur.execute("CREATE INDEX IF NOT EXISTS %s ON %s (created_at)" % (index, _ident(schema, name)))
    if not conn.autocommit:
        conn.commit()


def create_tables(conn, schema="public", suffix=""):
    """Create the four tables (names + suffix) in `schema` if absent; the schema too."""
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS %s" % _ident(schema))
    for table in TABLES:
        create_table(conn, table, schema, table + suffix)


def fill(conn, table, rows, *, seed=DEFAULT_SEED, now=None, suffix="", schema="public", name=None,
         chunk_rows=CHUNK_ROWS, read_size=1 << 18):
    """COPY `rows` generated rows of `table` into schema.(name or table + suffix); returns bytes sent.

    Commits when the connection is not in autocommit mode.
    """
    _check_table(table)
    target = name or table + suffix
    stream = RowStream(table, rows, seed, now, chunk_rows)
    statement = "COPY %s (%s) FROM STDIN" % (_ident(schema, target), ", ".join(_ident(c) for c in columns(table)))
    with conn.cursor() as cur:
        cur.copy_expert(statement, stream, size=read_size)
    if not conn.autocommit:
        conn.commit()
    return stream.bytes_read


def generate(conn, scale_rows, seed=DEFAULT_SEED, *, now=None, schema="public", suffix=""):
    """Create the tables and fill them: `scale_rows` is rows per table (int) or {table: rows}.

    Returns {table: {"rows", "bytes", "seconds"}}.
    """
    plan = dict.fromkeys(TABLES, scale_rows) if isinstance(scale_rows, int) else dict(scale_rows)
    for table in plan:
        _check_table(table)
    now = _now(now)
    create_tables(conn, schema, suffix)
    report = {}
    for table, count in plan.items():
        started = time.perf_counter()
        sent = fill(conn, table, count, seed=seed, now=now, suffix=suffix, schema=schema)
        report[table] = {"rows": count, "bytes": sent, "seconds": time.perf_counter() - started}
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string or URI")
    parser.add_argument("--rows", type=int, required=True, help="rows per table")
    parser.add_argument("--table", action="append", choices=list(TABLES), help="table to fill (repeatable; default all)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--now", type=dt.datetime.fromisoformat, help="end of the three-year window (ISO 8601 with offset)")
    parser.add_argument("--schema", default="public")
    parser.add_argument("--suffix", default="", help="appended to every table name")
    args = parser.parse_args(argv)
    import psycopg2  # noqa: PLC0415 - only the command line needs the driver; the generator is pure Python

    conn = psycopg2.connect(args.dsn)
    try:
        report = generate(conn, {t: args.rows for t in (args.table or TABLES)}, seed=args.seed, now=args.now,
                          schema=args.schema, suffix=args.suffix)
    finally:
        conn.close()
    for table, info in report.items():
        print("%-28s %9d rows %8.1f MB %7.2f s %9.0f rows/s" % (
            table + args.suffix, info["rows"], info["bytes"] / 1e6, info["seconds"],
            info["rows"] / info["seconds"] if info["seconds"] else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
