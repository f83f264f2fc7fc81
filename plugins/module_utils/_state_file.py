# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A check module's small JSON state on the managed host: what the last run saw, so the next one can tell
what is new (log_scan's read marks, celery_status's queue lengths). Private to the collection."""

from __future__ import annotations

import json
import os
import tempfile


class StateFileError(Exception):
    """The state file cannot be read or written; the message says which file and what to do."""


def load_state(path, kind, version=1):
    """The saved state of a `kind` module (an empty one when the file does not exist yet)."""
    if not os.path.exists(path):
        return {"kind": kind, "version": version}
    try:
        with open(path) as stream:
            state = json.load(stream)
    except (OSError, ValueError) as exc:
        raise StateFileError("cannot read state_file %s: %s. Fix or delete it (the next run then starts afresh)" % (
            path, exc)) from exc
    if not isinstance(state, dict) or state.get("kind") != kind or state.get("version") != version:
        raise StateFileError("state_file %s is not a %s state file (version %s): give each module its own file, "
                             "or delete it" % (path, kind, version))
    return state


def save_state(path, state):
    """Write the state atomically (a reader never sees half of it), mode 0600, creating its directory (0700)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
        try:
            with os.fdopen(fd, "w") as stream:
                json.dump(state, stream, indent=1, sort_keys=True)
            os.rename(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise StateFileError("cannot write state_file %s: %s" % (path, exc.strerror or exc)) from exc


def keep_state(path, new_state, check_mode):
    """Save new_state (None: nothing to keep) unless in check mode; whether the file was written."""
    if new_state is None or check_mode:
        return False
    save_state(path, new_state)
    return True
