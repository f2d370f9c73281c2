"""psiTurk's experiment errors: raising one in a custom route renders the numbered error page."""

from turnout.experiment.errors import (  # noqa: F401
    ExperimentApiError,
    ExperimentError,
    InvalidUsage,
    InvalidUsageError,
)
