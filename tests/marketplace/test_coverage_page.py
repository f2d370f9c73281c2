"""docs/marketplace-coverage.md is generated; it must match what the code implements."""

from __future__ import annotations

from pathlib import Path

from turnout.marketplace.local import coverage
from turnout.marketplace.local.validation import service_model

PAGE = Path(__file__).resolve().parents[2] / "docs" / "marketplace-coverage.md"


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| [")]


def test_every_botocore_operation_is_listed_once() -> None:
    rows = _rows(coverage.render())
    assert len(rows) == len(service_model().operation_names) == 39
    assert "| [x] | CreateHIT |" in "\n".join(rows)
    assert "| [ ] | GetFileUploadURL |" in "\n".join(rows)


def test_committed_page_is_current() -> None:
    # Compare the operation table only, so a botocore patch release alone does not fail it.
    assert _rows(PAGE.read_text()) == _rows(coverage.render()), (
        "regenerate: python -m turnout.marketplace.local.coverage > docs/marketplace-coverage.md")
