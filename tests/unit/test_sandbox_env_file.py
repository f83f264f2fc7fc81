"""The sandbox app's env file (sandbox/containers.py): a SECRET_KEY rotated in it is what the web containers get, and
`stackctl up` neither rewrites it nor falls back to the key in settings.json."""

from __future__ import annotations

import containers
import orchestrate

IMAGES = {"postgres": "sha256:pg", "redis": "sha256:redis", "web": "sha256:web"}


def test_the_env_file_is_written_once_and_its_values_win_in_the_web_containers(tmp_path):
    settings = containers.default_settings(tmp_path)
    path = containers.ensure_env_file(settings)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert containers.read_env_file(path) == {"DJANGO_SECRET_KEY": settings["secret_key"]}
    before = containers.container_specs(settings, IMAGES)["website"]

    # What the security-breach runbook does: a new key (and AWS keys) in the file.
    path.write_text("# rotated\nDJANGO_SECRET_KEY=rotated-key\nexport AWS_ACCESS_KEY_ID=AKIANEW\n")
    containers.ensure_env_file(settings)  # the next `up`
    assert "rotated-key" in path.read_text()
    after = containers.container_specs(settings, IMAGES)
    for name in ("website", "celery_worker", "celery_beat", "flower"):
        assert after[name]["environment"]["DJANGO_SECRET_KEY"] == "rotated-key"
        assert after[name]["environment"]["AWS_ACCESS_KEY_ID"] == "AKIANEW"
    # A changed spec: `up` recreates a container still running the old key with the new one.
    assert containers.config_hash(after["website"]) != containers.config_hash(before)
    assert after["website"]["environment"]["POSTGRES_PASSWORD"] == settings["passwords"]["postgres"]  # wiring stays


def test_settings_kept_by_an_older_version_get_the_env_file_and_an_admin_password(tmp_path):
    settings = containers.default_settings(tmp_path)
    del settings["env_file"], settings["passwords"]["admin"]
    assert orchestrate.complete_settings(settings, tmp_path) is True
    assert settings["env_file"] == str(tmp_path / "app.env") and len(settings["passwords"]["admin"]) >= 18
    assert orchestrate.complete_settings(settings, tmp_path) is False
