"""``psiturk.psiturk_shell``: psiTurk's interactive shell, replaced by the ``turnout`` CLI."""

from __future__ import annotations

from typing import Any

from turnout.compat.unsupported import cls, function, module_getattr

INSTEAD = ("use the turnout command line: `turnout hit ...`, `turnout worker ...`, `turnout mode`, "
           "`turnout serve`, `turnout export` (see `turnout --help`)")

PsiturkNetworkShell = cls("psiturk.psiturk_shell.PsiturkNetworkShell", INSTEAD)
run = function("psiturk.psiturk_shell.run", INSTEAD)


def docopt_cmd(func: Any) -> Any:
    """psiTurk's shell-command decorator; the shell itself is not provided."""
    return func


__getattr__ = module_getattr("psiturk.psiturk_shell", {"http": INSTEAD})
