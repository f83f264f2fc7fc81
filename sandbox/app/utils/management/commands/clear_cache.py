"""manage.py clear_cache: removes the site's cache keys (those under CACHE_KEY_PREFIX), or the whole cache with --all."""

from django.conf import settings
from django.core.cache import cache
from django.core.management.base import BaseCommand

BATCH = 500
GLOB_SPECIAL = "\\*?[]"


def glob_escape(text):
    return "".join("\\" + char if char in GLOB_SPECIAL else char for char in text)


class Command(BaseCommand):
    help = "Clear Django's cache: the keys under CACHE_KEY_PREFIX (SCAN + UNLINK), or everything in its Redis database with --all."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="flush the cache's whole Redis database (FLUSHDB)")

    def handle(self, *args, **options):
        config = settings.CACHES["default"]
        prefix = config.get("KEY_PREFIX", "")
        if options["all"] or not prefix or not config["BACKEND"].endswith("RedisCache"):
            cache.clear()
            self.stdout.write("cache cleared")
            return
        import redis  # noqa: PLC0415 - only the Redis backend needs it

        client = redis.Redis.from_url(config["LOCATION"], **config.get("OPTIONS", {}))
        removed = 0
        batch = []
        for key in client.scan_iter(match=glob_escape(prefix) + ":*", count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                removed += client.unlink(*batch)
                batch.clear()
        if batch:
            removed += client.unlink(*batch)
        client.close()
        self.stdout.write("cache cleared: %d keys removed (prefix %r)" % (removed, prefix))
