# Run by `manage.py shell -c` in the web container: sets the Django admin's password from the environment
# (never from argv), creating the user only when asked. Prints one JSON line, never the password.
import json
import os

from django.contrib.auth import get_user_model

User = get_user_model()
name = os.environ["WEBSTACK_ADMIN_USER"]
password = os.environ["WEBSTACK_ADMIN_PASSWORD"]
dry_run = os.environ.get("WEBSTACK_DRY_RUN") == "1"
user = User._default_manager.filter(**{User.USERNAME_FIELD: name}).first()
result = {"user": name, "existed": user is not None, "created": False, "changed": False, "missing": False}
if user is None:
    if os.environ.get("WEBSTACK_ADMIN_CREATE") == "1":
        result["created"] = result["changed"] = True
        if not dry_run:
            User._default_manager.create_superuser(**{User.USERNAME_FIELD: name, "password": password})
    else:
        result["missing"] = True
elif not user.check_password(password):
    result["changed"] = True
    if not dry_run:
        user.set_password(password)  # the admin's other sessions end: their auth hash no longer matches
        user.save(update_fields=["password"])
print(json.dumps(result))
