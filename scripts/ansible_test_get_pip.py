"""Stand-in for the get-pip.py that ansible-test downloads (its host is unreachable here).

ansible-test runs this file with pip's arguments to put pip into the
virtual environments it builds for sanity tests; the pip bundled with
the interpreter's ensurepip does the same job. scripts/bootstrap.sh copies
it to ~/.ansible/test/cache/get_pip_<version>.py.
"""

import subprocess
import sys

UNSUPPORTED = ("--no-setuptools", "--no-wheel")  # get-pip.py options that pip install does not take

args = [arg for arg in sys.argv[1:] if arg not in UNSUPPORTED]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
