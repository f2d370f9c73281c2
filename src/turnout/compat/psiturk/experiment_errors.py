"""psiTurk's experiment errors: raising one in a custom route renders the numbered error page."""

from turnout.experiment.errors import (  # noqa: F401
    ExperimentApiError,
    ExperimentError,
    InvalidUsage,
    InvalidUsageError,
)


def unwrap(string: str) -> str:
    """Join a wrapped, indented message into one line (psiTurk's helper for its error texts)."""
    return " ".join(line.strip() for line in string.splitlines() if line.strip())
