"""``python -m turnout.scheduler [ARGS]``: the same as ``turnout scheduler [ARGS]``.

``turnout serve`` starts its runner child this way, so the child needs no console script
on PATH (``-C PROJECT`` may come first, as with ``turnout``).
"""

from __future__ import annotations

import sys

from turnout.cli import main

if __name__ == "__main__":  # pragma: no cover
    args = sys.argv[1:]
    project = args[:2] if args[:1] == ["-C"] else []
    main([*project, "scheduler", *args[len(project):]], prog_name="turnout")
