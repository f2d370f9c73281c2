"""turnout's offline MTurk marketplace ("local" mode): the real MTurk Requester wire
protocol over a SQLite store, with simulated time, workers and faults.

Start with ``create_app`` (WSGI), ``serve`` (standalone) or ``ThreadedMarketplace``
(tests). ``MarketplaceState`` and ``WorkerSide`` are the Python API. See
docs/marketplace.md.
"""

from turnout.clock import SharedManualClock

from .errors import (
    MarketplaceError,
    ParameterValidationError,
    RequestError,
    ServiceFault,
    ThrottlingException,
    ValidationException,
    WorkerActionRefused,
)
from .records import (
    Assignment,
    BonusPayment,
    Event,
    Hit,
    Page,
    Qualification,
    QualificationType,
    Transaction,
    Worker,
)
from .state import FAULT_KINDS, MarketplaceState, StoreUnusable
from .validation import OutputDrift, validate_output
from .worker_side import WorkerSide, answer_xml, task_url
from .wsgi import MarketplaceApp, ThreadedMarketplace, create_app, serve

__all__ = [
    "FAULT_KINDS",
    "Assignment",
    "BonusPayment",
    "Event",
    "Hit",
    "MarketplaceApp",
    "MarketplaceError",
    "MarketplaceState",
    "OutputDrift",
    "Page",
    "ParameterValidationError",
    "Qualification",
    "QualificationType",
    "RequestError",
    "ServiceFault",
    "StoreUnusable",
    "SharedManualClock",
    "ThreadedMarketplace",
    "ThrottlingException",
    "Transaction",
    "ValidationException",
    "Worker",
    "WorkerActionRefused",
    "WorkerSide",
    "answer_xml",
    "create_app",
    "serve",
    "task_url",
    "validate_output",
]
