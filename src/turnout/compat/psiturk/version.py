"""``psiturk.version``: the psiTurk release whose interface turnout provides.

Project code that checks the psiTurk version (``version_number >= '3'``) sees the release
turnout is compatible with; ``turnout_version`` names turnout's own.
"""

from turnout import __version__ as turnout_version  # noqa: F401

version_number = "3.3.1"
