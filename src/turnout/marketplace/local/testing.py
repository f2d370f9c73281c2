"""Helpers for tests that talk to a marketplace (offline or the real sandbox), kept in the
package like ``flask.testing`` so every test suite in turnout can share them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from xml.sax.saxutils import escape

__all__ = ["EXTERNAL_QUESTION_NS", "START", "external_question", "sandbox_contract_requested"]

EXTERNAL_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
# A fixed instant tests start ManualClocks at, so expected timestamps are literals.
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def external_question(url: str, frame_height: int = 600) -> str:
    """An ExternalQuestion document pointing at ``url`` (XML-escaped)."""
    return (f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{frame_height}</FrameHeight></ExternalQuestion>")


def sandbox_contract_requested() -> bool:
    """True when ``TURNOUT_MTURK_SANDBOX_CONTRACT=1``: run contract tests against the sandbox."""
    return os.environ.get("TURNOUT_MTURK_SANDBOX_CONTRACT") == "1"
