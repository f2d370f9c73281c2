"""``psiturk.amt_services``: psiTurk's thin boto3 layer.

Its qualification ids, response classes and ``MTurkHIT`` are provided. ``MTurkServices``
(a boto3 client of psiTurk's own making) is not: turnout's marketplace calls go through
its HIT services and payments ledger, which ``psiturk.amt_services_wrapper.
MTurkServicesWrapper`` exposes with psiTurk's method names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from turnout.compat.psiturk.psiturk_exceptions import AmtServicesException, NoMturkConnectionError
from turnout.compat.unsupported import cls

PERCENT_ASSIGNMENTS_APPROVED_QUAL_ID = "000000000000000000L0"
NUMBER_HITS_APPROVED_QUAL_ID = "00000000000000000040"
LOCALE_QUAL_ID = "00000000000000000071"
MASTERS_QUAL_ID = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS_SANDBOX_QUAL_ID = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
NOTIFICATION_VERSION = "2006-05-05"


class AmtServicesResponse:
    """The result of one marketplace call: ``success``, ``status``, ``data`` (and ``exception``)."""

    def __init__(self, status: str | None = None, success: bool | None = None, operation: str = "",
                 message: str = "", data: Any = None, **kwargs: Any) -> None:
        self.success = success
        self.status = status
        self.operation = operation
        self.message = message
        self.data = data if data is not None else {}
        for key, value in kwargs.items():
            setattr(self, key, value)


class AmtServicesSuccessResponse(AmtServicesResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, status="success", success=True, **kwargs)


class AmtServicesErrorResponse(AmtServicesResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        exception = kwargs.pop("exception", None)
        super().__init__(*args, status="error", success=False, exception=exception, **kwargs)


class NoHitDataError(AmtServicesException): ...


def check_mturk_connection(func: Callable[..., Any]) -> Callable[..., Any]:
    """psiTurk's guard: refuse when the object has no marketplace connection."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.connect_to_turk():
            raise NoMturkConnectionError()
        return func(self, *args, **kwargs)

    return wrapper


def amt_service_response(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a call's return value or exception into an AmtServices(Success|Error)Response."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> AmtServicesResponse:
        try:
            return AmtServicesSuccessResponse(operation=func.__name__, data=func(*args, **kwargs))
        except Exception as exc:
            return AmtServicesErrorResponse(operation=func.__name__, exception=exc)

    return wrapper


class MTurkHIT:
    """One HIT as psiTurk described it: its fields are in ``options`` (``hitid``, ``status``,
    ``max_assignments``, ``number_assignments_pending`` ...)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __repr__(self) -> str:
        o = self.options
        return (f"{o.get('title')}\n\tStatus: {o.get('status')}\n\tHITid: {o.get('hitid')}\n\t"
                f"max:{o.get('max_assignments')}/pending:{o.get('number_assignments_pending')}/"
                f"complete:{o.get('number_assignments_completed')}/"
                f"remain:{o.get('number_assignments_available')}\n\tCreated:{o.get('creation_time')}\n\t"
                f"Expires:{o.get('expiration')}\n\tIs Expired:{o.get('is_expired')}\n")


MTurkServices = cls(
    "psiturk.amt_services.MTurkServices",
    "use psiturk.amt_services_wrapper.MTurkServicesWrapper (its approve, bonus and HIT methods run "
    "through turnout's services and payments ledger), or the `turnout hit` / `turnout worker` commands")
