"""turnout's stand-in for the ``psiturk`` package (see turnout.compat)."""

from turnout import __version__ as version_number  # noqa: F401
