"""``psiturk.utils``: ``colorize`` (terminal colours) and ``get_my_ip``."""

from __future__ import annotations

from turnout.compat.unsupported import function

_COLOURS = {"purple": "95", "cyan": "96", "darkcyan": "36", "blue": "93", "green": "92",
            "yellow": "93", "red": "91", "white": "37", "bold": "1", "underline": "4"}


def colorize(target: str, color: str, use_escape: bool = True) -> str:
    """``target`` in an ANSI colour; with ``use_escape`` the codes are wrapped for readline."""
    code = f"\033[{_COLOURS[color]}m" if color in _COLOURS else ""
    if use_escape:
        return f"\001{code}\002{target}\001\033[0m\002"
    return f"{code}{target}\033[m"


# psiTurk asked a web service for the machine's public address; turnout never calls out.
get_my_ip = function("psiturk.utils.get_my_ip",
                     "turnout makes no calls to outside services; set ad_url_domain (or ad_url) in "
                     "[HIT Configuration] to your public host name")
