"""``psiturk.amt_services_wrapper``: ``MTurkServicesWrapper`` mapped onto turnout's services.

Project code (custom.py admin routes, scripts) calls psiTurk's wrapper to approve, bonus
and manage HITs. Here each method runs turnout's own service for it
(``turnout.services.payments`` for money, ``turnout.services.hits`` for HITs), so every
payment goes through the payments ledger and is made at most once, and each returns
psiTurk's response objects: ``WrapperResponseSuccess`` / ``WrapperResponseError`` with
``status``, ``success``, ``message``, ``data``, ``operation`` (and ``exception``).

The mode is the wrapper's own (``MTurkServicesWrapper(mode=...)``, ``set_mode``), never a
process global: two wrappers in two modes never act in each other's marketplace. Without
a mode the wrapper takes the project's (``[Shell Parameters] launch_in_mode``, as
``turnout mode`` shows it). Choosing ``live`` on a wrapper is the confirmation that live
money may move, as it was in psiTurk; the turnout CLI asks a person instead.

Where turnout deliberately differs from psiTurk (see docs/moving-from-psiturk.md): "all"
means this study's HITs in this mode and codeversion; ``bonus_assignment_for_assignment_id``
does not pay a second bonus when called again; reject/unreject ``_for_hit`` act on that
HIT's assignments only.
"""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from turnout.compat import runtime
from turnout.compat.psiturk.amt_services import MTurkHIT
from turnout.compat.psiturk.psiturk_exceptions import (
    AmtServicesWrapperError,
    AssignmentAlreadyBonusedError,
    AssignmentIdNotFoundInLocalDBError,
    BadBonusAmountError,
    BonusReasonMissingError,
    NoAutoBonusAmountSetError,
    PsiturkException,
    WorkerIdNotFoundInLocalDBError,
)
from turnout.compat.psiturk.psiturk_statuses import CREDITED, SUBMITTED
from turnout.compat.unsupported import refuse

ACTOR = "custom.py:MTurkServicesWrapper"
COMPLETED = [3, 4, 5, 7]


# --- psiTurk's response objects ---------------------------------------------------------------


class WrapperResponse:
    """What every wrapper method returns; ``to_dict()`` gives psiTurk's JSON shape."""

    def __init__(self, status: str | None = None, message: str = "", data: Any = None, operation: str = "",
                 **kwargs: Any) -> None:
        self.dict_keys = ["status", "success", "message", "data", "operation"]
        self.status = status
        self.message = message
        self.data = data if data is not None else {}
        self.operation = operation
        self.mode: str | None = None
        self.sandbox: bool | None = None
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        parts = [("Operation", self.operation), ("Status", self.status), ("Message", self.message),
                 ("Exception", getattr(self, "exception", None))]
        return "Response({})".format(" | ".join(f"{k}: {v}" for k, v in parts if v))

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.dict_keys}


class WrapperResponseSuccess(WrapperResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, status="success", success=True, **kwargs)


class WrapperResponseError(WrapperResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        exception = kwargs.pop("exception", None)
        super().__init__(*args, status="error", success=False, **kwargs)
        self.dict_keys.append("exception")
        self.exception = exception
        if not self.message and exception is not None:
            self.message = getattr(exception, "message", "") or str(exception)


def _as_psiturk_error(exc: Exception) -> Exception:
    """turnout's error values become psiTurk's exception types, keeping the message."""
    from turnout.config import ConfigError
    from turnout.errors import TurnoutError

    if isinstance(exc, TurnoutError):
        return AmtServicesWrapperError(message=exc.message)
    if isinstance(exc, ConfigError):
        return PsiturkException(message=str(exc))
    return exc


def amt_services_wrapper_response(func: Callable[..., Any]) -> Callable[..., Any]:
    """psiTurk's contract: a method never raises; it returns a success or an error response.

    A returned WrapperResponse passes through; a dict with an ``exception`` key is an
    error whose other keys are its data; anything else is the success's data.
    """

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> WrapperResponse:
        try:
            response = func(self, *args, **kwargs)
        except Exception as exc:
            return WrapperResponseError(operation=func.__name__, exception=_as_psiturk_error(exc))
        if isinstance(response, WrapperResponse):
            return response
        if isinstance(response, dict) and "exception" in response:
            exception = response.pop("exception")
            return WrapperResponseError(operation=func.__name__, exception=exception, data=response)
        return WrapperResponseSuccess(operation=func.__name__, data=response)

    return wrapper


# --- conversions ------------------------------------------------------------------------------


def _amount(amount: Any) -> str:
    """A bonus or reward in dollars as turnout's services take it ("1.50"), or "auto".

    psiTurk took floats; a float that is not a whole number of cents is refused rather
    than rounded, so no one is paid an amount they were not meant to get.
    """
    if amount == "auto":
        return "auto"
    if isinstance(amount, bool):
        raise BadBonusAmountError(message=f"not a dollar amount: {amount!r}")
    try:
        value = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(str(amount).strip().lstrip("$"))
    except InvalidOperation:
        raise BadBonusAmountError(message=f"not a dollar amount: {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise BadBonusAmountError(message=f"the amount must be greater than 0, got {amount!r}")
    if value != value.quantize(Decimal("0.01")):
        raise BadBonusAmountError(message=f"the amount must be whole cents, got {amount!r}")
    return f"{value:.2f}"


def _reason(reason: Any) -> str:
    if not reason or not str(reason).strip():
        raise BonusReasonMissingError(message="a bonus needs a reason; MTurk shows it to the worker")
    return str(reason)


def _item_response(item: Any, operation: str, *, bonused_before: bool = False) -> WrapperResponse:
    """One assignment's outcome from the payments ledger as a psiTurk response.

    ``bonused_before``: the ledger holds a paid bonus for it, so a skipped bonus is
    psiTurk's AssignmentAlreadyBonusedError.
    """
    data: dict[str, Any] = {"assignment_id": item.assignment_id, "outcome": item.outcome,
                            "message": item.message, "ledger_id": item.ledger_id}
    if item.amount is not None:
        data["amount"] = item.amount
    if item.outcome in ("ok", "already"):
        message = item.message
        if item.kind == "bonus" and item.outcome == "ok":
            message = f"gave bonus of ${item.amount} for assignment {item.assignment_id}"
            data["message"] = message
        return WrapperResponseSuccess(operation=operation, data=data, message=message)
    exc: PsiturkException
    if item.kind == "bonus" and item.outcome == "skipped" and (bonused_before or "already" in item.message):
        exc = AssignmentAlreadyBonusedError(message=item.message)
    elif item.kind == "bonus" and item.outcome == "skipped" and "auto" in item.message:
        exc = NoAutoBonusAmountSetError(message=item.message)
    else:
        exc = AmtServicesWrapperError(message=item.message)
    return WrapperResponseError(operation=operation, exception=exc, data=data)


def _bonus_responses(ctx: Any, items: Sequence[Any], operation: str) -> list[WrapperResponse]:
    """Bonus outcomes as responses; a skipped one is "already bonused" when the ledger says so."""
    from turnout.services import payments

    def paid_before(item: Any) -> bool:
        if item.outcome != "skipped":
            return False
        entries = payments.ledger_entries(ctx, assignment_id=item.assignment_id, kind="bonus")
        return any(e["state"] == "succeeded" for e in entries)

    return [_item_response(i, operation, bonused_before=paid_before(i)) for i in items]


def _hit_object(view: dict[str, Any]) -> MTurkHIT:
    """turnout's HIT view as psiTurk's MTurkHIT (datetimes, ``duration_in_seconds``)."""
    options = dict(view)
    for key in ("creation_time", "expiration"):
        if isinstance(options.get(key), str):
            options[key] = datetime.fromisoformat(options[key])
    options["duration_in_seconds"] = options.get("assignment_duration_in_seconds")
    return MTurkHIT(options)


def _one_hit_id(hit_id: Any) -> str:
    """psiTurk's shell passed some HIT ids as a one-element list."""
    if isinstance(hit_id, (list, tuple)) and len(hit_id) == 1:
        hit_id = hit_id[0]
    if not isinstance(hit_id, str) or not hit_id:
        raise PsiturkException(message=f"expected one HIT id, got {hit_id!r}")
    return hit_id


def _whole(value: Any, what: str) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PsiturkException(message=f"{what} must be a whole number, got {value!r}") from None
    if number != int(number):
        raise PsiturkException(message=f"{what} must be a whole number, got {value!r}")
    return int(number)


# --- the wrapper ------------------------------------------------------------------------------


class MTurkServicesWrapper:
    """psiTurk's MTurk business logic, run by turnout's services in this wrapper's mode."""

    def __init__(self, config: Any = None, web_services: Any = None, mode: str | None = None) -> None:
        rt = runtime()
        if config is None:
            from turnout.compat.psiturk.psiturk_config import PsiturkConfig

            config = PsiturkConfig()
            config.load_config()
        self.config = config
        self.mode: str = ""
        self._set_mode(mode or rt.settings.default_mode)

    @property
    def amt_services(self) -> Any:
        refuse("MTurkServicesWrapper.amt_services (psiTurk's own boto3 layer)",
               "call the wrapper's methods, which run through turnout's services and payments ledger")

    def _set_mode(self, mode: str) -> None:
        from turnout.config import MODES

        if mode not in MODES:
            raise PsiturkException(message=f"mode not recognized: {mode!r} (use one of {', '.join(MODES)})")
        self.mode = mode

    @contextmanager
    def _market(self) -> Iterator[Any]:
        """A MarketContext for this wrapper's mode, from the process's one marketplace
        (``services.context.open_market``, as the CLI and the web app get theirs).

        The project's ``db_session`` is committed first (psiTurk's wrapper committed it
        too) so that, on SQLite, it holds no lock the services' own transactions wait on;
        afterwards its objects are expired so they show the statuses the services set.
        """
        from turnout.clock import SystemClock
        from turnout.services.context import open_market

        rt = runtime()
        rt.db.session.commit()
        served = rt.app.extensions.get("turnout") if rt.app is not None else None
        clock = getattr(served, "clock", None) or rt.clock or SystemClock()  # the server's clock
        try:
            # Local mode without TURNOUT_MTURK_ENDPOINT: the project's own store, served
            # from one thread of this process for as long as it runs.
            yield open_market(rt.settings, rt.db, self.mode, ACTOR, clock, check_credentials=False)
        finally:
            rt.db.session.expire_all()

    def _local(self, assignment_id: str, *, worker_id: str | None = None) -> Any | None:
        """The newest local participant row of ``assignment_id`` (psiTurk's lookup)."""
        P = runtime().db.models.Participant
        query = runtime().db.session.query(P).filter(P.assignmentid == assignment_id)
        if worker_id is not None:
            query = query.filter(P.workerid == worker_id)
        return query.order_by(P.beginhit.desc()).first()

    # --- miscellaneous ------------------------------------------------------------------------

    @amt_services_wrapper_response
    def get_mode(self) -> str:
        return self.mode

    @amt_services_wrapper_response
    def set_mode(self, mode: str) -> dict[str, Any]:
        self._set_mode(mode)
        return {"success": True}

    def random_id_generator(self, size: int = 6, chars: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(random.choice(chars) for _ in range(size))

    @amt_services_wrapper_response
    def amt_balance(self) -> Any:
        from turnout.services import hits

        with self._market() as ctx:
            return hits.balance(ctx)["available_balance"]

    # --- workers ------------------------------------------------------------------------------

    @staticmethod
    def add_bonus_info(assignment_dict: dict[str, Any]) -> dict[str, Any]:
        P = runtime().db.models.Participant
        row = runtime().db.session.get(P, f"{assignment_dict['workerId']}:{assignment_dict['assignmentId']}")
        assignment_dict["bonus"] = row.bonus if row is not None else "not-found-in-study-database"
        return assignment_dict

    @amt_services_wrapper_response
    def count_workers(self, codeversion: Any = "latest", mode: str | None = "live",
                      status: Any = "completed") -> int:
        P = runtime().db.models.Participant
        query = runtime().db.session.query(P)
        if codeversion == "latest":
            codeversion = self.config.get("Task Parameters", "experiment_code_version")
        if status == "completed":
            status = COMPLETED
        if mode:
            query = query.filter(P.mode == mode)
        if codeversion:
            query = query.filter(P.codeversion.in_(codeversion if isinstance(codeversion, list) else [codeversion]))
        if status:
            query = query.filter(P.status.in_(status if isinstance(status, list) else [status]))
        return int(query.count())

    def _hits_or_fetch(self, hits: Sequence[MTurkHIT] | None) -> Sequence[MTurkHIT]:
        if hits:
            return hits
        response = self.get_all_hits()
        if not response.success:
            raise response.exception
        return list(response.data)

    @amt_services_wrapper_response
    def count_available(self, hits: Sequence[MTurkHIT] | None = None) -> int:
        return sum(h.options["number_assignments_available"] for h in self._hits_or_fetch(hits)
                   if h.options["status"] == "Assignable")

    @amt_services_wrapper_response
    def count_pending(self, hits: Sequence[MTurkHIT] | None = None) -> int:
        return sum(h.options["number_assignments_pending"] for h in self._hits_or_fetch(hits)
                   if h.options["status"] in ("Assignable", "Unassignable"))

    @amt_services_wrapper_response
    def count_maybe_will_complete(self, hits: Sequence[MTurkHIT] | None = None) -> int:
        total = 0
        for h in self._hits_or_fetch(hits):
            if h.options["status"] == "Assignable":
                total += h.options["number_assignments_pending"] + h.options["number_assignments_available"]
            elif h.options["status"] == "Unassignable":
                total += h.options["number_assignments_pending"]
        return total

    @amt_services_wrapper_response
    def get_assignments(self, hit_ids: Sequence[str] | None = None, assignment_status: str | None = None,
                        all_studies: bool = False) -> dict[str, Any]:
        """This study's participant rows (psiTurk's default), or the marketplace's
        assignments with ``all_studies`` or ``assignment_status='Rejected'``."""
        if not all_studies and assignment_status != "Rejected":
            P = runtime().db.models.Participant
            query = runtime().db.session.query(P).filter(~P.uniqueid.contains("debug"))
            if assignment_status:
                local = {"Submitted": SUBMITTED, "Approved": CREDITED}.get(assignment_status)
                if local is None:
                    raise PsiturkException(message=f"unknown assignment status {assignment_status!r}")
                query = query.filter(P.status == local)
            if hit_ids:
                query = query.filter(P.hitid.in_(list(hit_ids)))
            return {"assignments": query.all()}
        from turnout.services import hits

        with self._market() as ctx:
            found = hits.list_assignments(ctx, hit_ids=list(hit_ids) if hit_ids else None,
                                          status=assignment_status, all_studies=True)
        return {"assignments": found}

    # --- approve ------------------------------------------------------------------------------

    def _approve(self, assignment_ids: list[str], operation: str) -> WrapperResponse:
        from turnout.services import payments

        with self._market() as ctx:
            result = payments.approve(ctx, assignment_ids, confirm_live=True)
        return _item_response(result.items[0], operation)

    @amt_services_wrapper_response
    def approve_all_assignments(self, all_studies: bool = False) -> dict[str, Any]:
        """Approve submitted work: this study's HITs in this mode and codeversion, or with
        ``all_studies`` every submitted assignment of the account in this mode."""
        from turnout.services import hits, payments

        with self._market() as ctx:
            if all_studies:
                ids = [a["assignmentId"] for a in hits.list_assignments(ctx, status="Submitted", all_studies=True)]
                items = payments.approve(ctx, ids, confirm_live=True).items if ids else []
            else:
                items = payments.approve_all(ctx, confirm_live=True).items
        return {"results": [_item_response(i, "approve_local_assignment") for i in items]}

    @amt_services_wrapper_response
    def approve_assignment_by_assignment_id(self, assignment_id: str, all_studies: bool = False) -> Any:
        if not all_studies and self._local(assignment_id) is None:
            raise AssignmentIdNotFoundInLocalDBError(message=f"no participant of this study has assignment "
                                                             f"{assignment_id}; pass all_studies=True to approve it")
        return self._approve([assignment_id], "approve_assignment_by_assignment_id")

    @amt_services_wrapper_response
    def approve_assignments_for_hit(self, hit_id: str, all_studies: bool = False) -> dict[str, Any]:
        from turnout.services import payments

        with self._market() as ctx:
            items = payments.approve_hit(ctx, hit_id, confirm_live=True).items
        return {"results": [_item_response(i, "approve_local_assignment") for i in items], "hit_id": hit_id}

    @amt_services_wrapper_response
    def approve_local_assignment(self, assignment: Any) -> Any:
        return self._approve([assignment.assignmentid], "approve_local_assignment")

    @amt_services_wrapper_response
    def approve_mturk_assignment(self, assignment: dict[str, Any], ignore_local_not_found: bool = False) -> Any:
        assignment_id = assignment["assignmentId"]
        if not ignore_local_not_found and self._local(assignment_id, worker_id=assignment["workerId"]) is None:
            raise WorkerIdNotFoundInLocalDBError(message=f"worker {assignment['workerId']} has no participant row "
                                                         f"for assignment {assignment_id} in this study")
        return self._approve([assignment_id], "approve_mturk_assignment")

    # --- reject / unreject --------------------------------------------------------------------

    def _batch(self, action: str, assignment_ids: Sequence[str], operation: str) -> list[WrapperResponse]:
        from turnout.services import payments

        ids = [a for a in assignment_ids if a]
        if not ids:
            return []
        with self._market() as ctx:
            items = getattr(payments, action)(ctx, ids, confirm_live=True).items
        return [_item_response(i, operation) for i in items]

    @amt_services_wrapper_response
    def reject_assignment(self, assignment_id: str, all_studies: bool = False) -> dict[str, Any]:
        response = self._batch("reject", [assignment_id], "reject_assignment")[0]
        if not response.success:
            raise response.exception
        return {"success": True}

    @amt_services_wrapper_response
    def reject_assignments(self, assignment_ids: Sequence[str], all_studies: bool = False) -> dict[str, Any]:
        return {"results": self._batch("reject", list(assignment_ids), "reject_assignment")}

    @amt_services_wrapper_response
    def reject_assignments_for_hit(self, hit_id: str, all_studies: bool = False) -> dict[str, Any]:
        """Reject the submitted work of this HIT (psiTurk rejected every submitted row of any HIT)."""
        from turnout.services import payments

        with self._market() as ctx:
            items = payments.reject_hit(ctx, hit_id, confirm_live=True).items
        return {"results": [_item_response(i, "reject_assignment") for i in items]}

    @amt_services_wrapper_response
    def unreject_assignment(self, assignment_id: str, all_studies: bool = False) -> str:
        response = self._batch("unreject", [assignment_id], "unreject_assignment")[0]
        if not response.success:
            raise response.exception
        return f"unrejected {assignment_id}"

    @amt_services_wrapper_response
    def unreject_assignments(self, assignment_ids: Sequence[str], all_studies: bool = False) -> dict[str, Any]:
        return {"results": self._batch("unreject", list(assignment_ids), "unreject_assignment")}

    @amt_services_wrapper_response
    def unreject_assignments_for_hit(self, hit_id: str, all_studies: bool = False) -> dict[str, Any]:
        from turnout.services import payments

        with self._market() as ctx:
            items = payments.unreject_hit(ctx, hit_id, confirm_live=True).items
        return {"results": [_item_response(i, "unreject_assignment") for i in items]}

    # --- bonus --------------------------------------------------------------------------------

    def _bonus(self, assignment_ids: list[str], amount: Any, reason: Any, override: bool,
               operation: str) -> WrapperResponse:
        from turnout.services import payments

        value, text = _amount(amount), _reason(reason)
        with self._market() as ctx:
            result = payments.bonus(ctx, assignment_ids, amount=value, reason=text, override=override,
                                    confirm_live=True)
            return _bonus_responses(ctx, result.items[:1], operation)[0]

    @amt_services_wrapper_response
    def bonus_all_local_assignments(self, amount: Any, reason: Any,
                                    override_bonused_status: bool = False) -> dict[str, Any]:
        """Bonus this study's approved work in this mode and codeversion, each at most once
        (``amount`` may be "auto": the participant's ``bonus`` column)."""
        from turnout.services import payments

        value, text = _amount(amount), _reason(reason)
        with self._market() as ctx:
            items = payments.bonus_all(ctx, amount=value, reason=text, override=override_bonused_status,
                                       confirm_live=True).items
            return {"results": _bonus_responses(ctx, items, "bonus_local_assignment")}

    @amt_services_wrapper_response
    def bonus_local_assignment(self, local_assignment: Any, amount: Any, reason: Any,
                               override_bonused_status: bool = False) -> Any:
        return self._bonus([local_assignment.assignmentid], amount, reason, override_bonused_status,
                           "bonus_local_assignment")

    @amt_services_wrapper_response
    def bonus_assignments_for_hit(self, hit_id: str, amount: Any, reason: Any, all_studies: bool = False,
                                  override_bonused_status: bool = False) -> dict[str, Any]:
        from turnout.services import payments

        value, text = _amount(amount), _reason(reason)
        with self._market() as ctx:
            items = payments.bonus_hit(ctx, hit_id, amount=value, reason=text, override=override_bonused_status,
                                       confirm_live=True).items
            return {"results": _bonus_responses(ctx, items, "bonus_local_assignment")}

    @amt_services_wrapper_response
    def bonus_assignment_for_assignment_id(self, assignment_id: str, amount: Any, reason: Any,
                                           all_studies: bool = False) -> Any:
        """Bonus one assignment once. psiTurk paid again on every call; a second bonus here
        needs ``bonus_local_assignment(..., override_bonused_status=True)``."""
        if not all_studies and self._local(assignment_id) is None:
            raise AssignmentIdNotFoundInLocalDBError(message=f"no participant of this study has assignment "
                                                             f"{assignment_id}; pass all_studies=True to bonus it")
        return self._bonus([assignment_id], amount, reason, False, "bonus_assignment_for_assignment_id")

    @amt_services_wrapper_response
    def bonus_nonlocal_assignment(self, assignment_id: str, amount: Any, reason: Any,
                                  worker_id: str | None = None) -> Any:
        return self._bonus([assignment_id], amount, reason, False, "bonus_nonlocal_assignment")

    # --- HITs ---------------------------------------------------------------------------------

    def _hits(self, all_studies: bool, **which: bool) -> list[MTurkHIT]:
        from turnout.services import hits

        with self._market() as ctx:
            return [_hit_object(v) for v in hits.list_hits(ctx, all_studies=all_studies, **which)]

    @amt_services_wrapper_response
    def tally_hits(self) -> dict[str, Any]:
        return {"hit_tally": len(self._hits(False, active=True))}

    @amt_services_wrapper_response
    def get_active_hits(self, all_studies: bool = False) -> list[MTurkHIT]:
        return self._hits(all_studies, active=True)

    @amt_services_wrapper_response
    def get_reviewable_hits(self, all_studies: bool = False) -> list[MTurkHIT]:
        return self._hits(all_studies, reviewable=True)

    @amt_services_wrapper_response
    def get_all_hits(self, all_studies: bool = False) -> list[MTurkHIT]:
        return self._hits(all_studies)

    @amt_services_wrapper_response
    def get_hit(self, hit_id: str) -> MTurkHIT:
        from turnout.services import hits

        with self._market() as ctx:
            return _hit_object(hits.get_hit(ctx, _one_hit_id(hit_id)))

    @amt_services_wrapper_response
    def extend_hit(self, hit_id: Any, assignments: Any = None, minutes: Any = None) -> dict[str, Any]:
        from turnout.services import hits

        with self._market() as ctx:
            hits.extend_hit(ctx, _one_hit_id(hit_id), assignments=_whole(assignments, "assignments"),
                            minutes=_whole(minutes, "minutes"), confirm_live=True)
        return {"success": True}

    @staticmethod
    def _hit_result(result: dict[str, Any], operation: str) -> WrapperResponse:
        if result["ok"]:
            return WrapperResponseSuccess(operation=operation, message=result["message"],
                                          data={"hit_id": result["hit_id"], "success": True,
                                                "message": result["message"]})
        return WrapperResponseError(operation=operation, data={"hit_id": result["hit_id"]},
                                    exception=AmtServicesWrapperError(message=result["message"]))

    @amt_services_wrapper_response
    def delete_all_hits(self, all_studies: bool = False) -> dict[str, Any]:
        """Delete the finished HITs (Reviewable, nothing left to review) of this study, or of
        the account with ``all_studies``."""
        from turnout.services import hits

        with self._market() as ctx:
            if all_studies:
                done = [h["hitid"] for h in hits.list_hits(ctx, all_studies=True, reviewable=True)
                        if h["number_submissions_needing_action"] == 0]
                results = hits.delete_hits(ctx, done)
            else:
                results = hits.delete_all(ctx)
        return {"results": [self._hit_result(r, "delete_hit") for r in results]}

    @amt_services_wrapper_response
    def delete_hit(self, hit_id: str) -> WrapperResponse:
        from turnout.services import hits

        with self._market() as ctx:
            return self._hit_result(hits.delete_hits(ctx, [_one_hit_id(hit_id)])[0], "delete_hit")

    @amt_services_wrapper_response
    def expire_hit(self, hit_id: str) -> dict[str, Any]:
        from turnout.services import hits

        with self._market() as ctx:
            result = hits.expire_hits(ctx, [_one_hit_id(hit_id)])[0]
        if not result["ok"]:
            raise AmtServicesWrapperError(message=f"Error expiring hit {hit_id}: {result['message']}")
        return {"hit_id": hit_id, "success": True}

    @amt_services_wrapper_response
    def expire_all_hits(self) -> dict[str, Any]:
        from turnout.services import hits

        with self._market() as ctx:
            results = hits.expire_all(ctx)
        return {"results": [self._hit_result(r, "expire_hit") for r in results]}

    @amt_services_wrapper_response
    def create_hit(self, num_workers: int, reward: Any, duration: Any, require_qualification_ids: Any = None,
                   block_qualification_ids: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Post a HIT from ``[HIT Configuration]``: ``num_workers`` assignments paying
        ``reward`` dollars for ``duration`` hours. It is recorded before the call, so a
        retry after a timeout cannot post it twice."""
        from turnout.services import hits

        require = require_qualification_ids or kwargs.get("whitelist_qualification_ids") or []
        block = block_qualification_ids or kwargs.get("blacklist_qualification_ids") or []
        # psiTurk's callers pass floats; turnout's services take exact strings.
        value = str(Decimal(repr(reward))) if isinstance(reward, float) else reward
        with self._market() as ctx:
            created = hits.create_hit(ctx, max_assignments=_whole(num_workers, "num_workers") or 0,
                                      reward=value, duration_hours=duration,
                                      require_qualification_ids=list(require),
                                      block_qualification_ids=list(block), confirm_live=True)
        return {"hit_id": created["hit_id"]}

    @amt_services_wrapper_response
    def list_qualification_types(self, Query: str = "", MustBeRequestable: bool = False,  # noqa: N803
                                 MustBeOwnedByCaller: bool = True) -> dict[str, Any]:
        params: dict[str, Any] = {"MustBeRequestable": MustBeRequestable, "MustBeOwnedByCaller": MustBeOwnedByCaller}
        if Query:
            params["Query"] = Query
        with self._market() as ctx:
            found = list(ctx.port.list_qualification_types(**params))
        return {"qualification_types": found}
