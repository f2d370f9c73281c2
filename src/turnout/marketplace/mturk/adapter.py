"""The MTurk adapter: the port's calls made on an unmodified boto3 ``mturk`` client.

The same client talks to live, the sandbox or the offline marketplace (``environment``);
nothing here knows which, except the Masters qualification id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from turnout.marketplace.client import describe_client_error
from turnout.marketplace.mturk.errors import classify, watch_attempts
from turnout.marketplace.mturk.hit_content import BONUS_FEE_RATE, fee_rate, requires_masters
from turnout.marketplace.port import Assignment, Bonus, FailureKind, MarketError, MarketFailure

T = TypeVar("T")
_HIT_ID = re.compile(r"\b([A-Z0-9]{20,64})\b")


def _hit_id_from(message: str) -> str | None:
    """The id of the HIT a duplicate-token CreateHIT error names (MTurk says it in text)."""
    after = message.split("HITId", 1)[1] if "HITId" in message else message
    for match in _HIT_ID.finditer(after):
        if any(c.isalpha() for c in match.group(1)):
            return match.group(1)
    return None


class MTurkMarketplace:
    """A ``Marketplace`` over a boto3 MTurk client (thread-safe, like the client)."""

    name = "mturk"

    def __init__(self, client: Any, environment: str) -> None:
        self.client = client
        self.environment = environment

    @property
    def where(self) -> str:
        return str(getattr(getattr(self.client, "meta", None), "endpoint_url", None) or "?")

    # --- calling -----------------------------------------------------------------------
    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            raise MarketError(failure, describe_client_error(exc)) from None

    def _watched(self, call: Callable[[], T]) -> T:
        """A call whose retries are watched: a failure after an attempt that may have been
        applied carries that attempt in ``ambiguous``."""
        with watch_attempts(self.client) as attempts:
            try:
                return call()
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise
                description = describe_client_error(exc)
        ambiguous = attempts.ambiguous if attempts.count > 1 else None
        if ambiguous:
            failure = MarketFailure(failure.kind, failure.code, failure.message, failure.detail, ambiguous)
        raise MarketError(failure, description)

    def _paginate(self, operation: str, result_key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated List* call (pages of 100, MTurk's maximum)."""
        try:
            paginator = self.client.get_paginator(operation)
            for page in paginator.paginate(**params, PaginationConfig={"PageSize": 100}):
                yield from page.get(result_key, [])
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            raise MarketError(failure, describe_client_error(exc)) from None

    # --- HITs --------------------------------------------------------------------------
    def post_hit(self, request: Any, *, token: str) -> str:
        try:
            answer = self._watched(lambda: self.client.create_hit(
                MaxAssignments=request.max_assignments, LifetimeInSeconds=request.lifetime_seconds,
                AssignmentDurationInSeconds=request.duration_seconds, Reward=f"{request.reward:.2f}",
                Title=request.title, Keywords=request.keywords, Description=request.description,
                Question=request.question, QualificationRequirements=request.qualifications,
                RequesterAnnotation=request.annotation, UniqueRequestToken=token))
        except MarketError as exc:
            if exc.failure.kind == FailureKind.ALREADY_DONE:
                hit_id = _hit_id_from(exc.failure.message)
                if hit_id:
                    return hit_id
            raise
        return str(answer["HIT"]["HITId"])

    def add_assignments(self, hit_id: str, count: int, *, token: str) -> None:
        self._watched(lambda: self.client.create_additional_assignments_for_hit(
            HITId=hit_id, NumberOfAdditionalAssignments=count, UniqueRequestToken=token))

    def extend_expiry(self, hit_id: str, expires_at: datetime) -> None:
        self._call(lambda: self.client.update_expiration_for_hit(HITId=hit_id, ExpireAt=expires_at))

    def expire_hit(self, hit_id: str, *, now: datetime) -> None:
        from datetime import timedelta

        # MTurk expires a HIT given a time in the past.
        self.extend_expiry(hit_id, now - timedelta(days=30))

    def delete_hit(self, hit_id: str) -> None:
        self._call(lambda: self.client.delete_hit(HITId=hit_id))

    def get_hit(self, hit_id: str) -> dict[str, Any]:
        return dict(self._call(lambda: self.client.get_hit(HITId=hit_id))["HIT"])

    def list_hits(self) -> Iterator[dict[str, Any]]:
        return self._paginate("list_hits", "HITs")

    # --- assignments and money -----------------------------------------------------------
    def assignment_record(self, assignment_id: str) -> dict[str, Any]:
        return dict(self._call(lambda: self.client.get_assignment(AssignmentId=assignment_id))["Assignment"])

    def get_assignment(self, assignment_id: str) -> Assignment:
        a = self.assignment_record(assignment_id)
        return Assignment(str(a.get("AssignmentId") or assignment_id), str(a.get("WorkerId") or ""),
                          str(a.get("HITId") or ""), str(a.get("AssignmentStatus") or ""))

    def assignments_for_hit(self, hit_id: str, statuses: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"AssignmentStatuses": list(statuses)} if statuses else {}
        return self._paginate("list_assignments_for_hit", "Assignments", HITId=hit_id, **params)

    def approve(self, assignment_id: str, *, feedback: str | None = None) -> None:
        self._watched(lambda: self.client.approve_assignment(AssignmentId=assignment_id))

    def unreject(self, assignment_id: str, *, feedback: str | None = None) -> None:
        self._watched(lambda: self.client.approve_assignment(
            AssignmentId=assignment_id, OverrideRejection=True,
            **({"RequesterFeedback": feedback} if feedback else {})))

    def reject(self, assignment_id: str, *, feedback: str) -> None:
        self._watched(lambda: self.client.reject_assignment(AssignmentId=assignment_id, RequesterFeedback=feedback))

    def send_bonus(self, worker_id: str, assignment_id: str, amount: str, reason: str, *, token: str) -> None:
        self._watched(lambda: self.client.send_bonus(WorkerId=worker_id, AssignmentId=assignment_id,
                                                     BonusAmount=amount, Reason=reason, UniqueRequestToken=token))

    def bonuses(self, *, hit_id: str | None = None, assignment_id: str | None = None) -> Iterator[Bonus]:
        params = {"HITId": hit_id} if hit_id else {"AssignmentId": assignment_id}
        for b in self._paginate("list_bonus_payments", "BonusPayments", **params):
            granted = b.get("GrantTime")
            yield Bonus(b.get("WorkerId"), str(b.get("AssignmentId") or assignment_id),
                        Decimal(str(b.get("BonusAmount", "0"))), granted if isinstance(granted, datetime) else None)

    def balance(self) -> dict[str, Any]:
        answer = self._call(lambda: self.client.get_account_balance())
        return {"available_balance": answer.get("AvailableBalance"), "on_hold_balance": answer.get("OnHoldBalance")}

    # --- workers ---------------------------------------------------------------------------
    def list_qualification_types(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._paginate("list_qualification_types", "QualificationTypes", **params)

    def find_qualification(self, name: str) -> str | None:
        for qtype in self.list_qualification_types(Query=name, MustBeRequestable=False, MustBeOwnedByCaller=True):
            if qtype.get("Name") == name:
                return str(qtype["QualificationTypeId"])
        return None

    def create_qualification(self, name: str, description: str) -> str:
        answer = self._call(lambda: self.client.create_qualification_type(
            Name=name, QualificationTypeStatus="Active", Keywords="turnout", Description=description))
        return str(answer["QualificationType"]["QualificationTypeId"])

    def qualify_worker(self, qualification_id: str, worker_id: str, *, value: int = 1) -> None:
        self._call(lambda: self.client.associate_qualification_with_worker(
            QualificationTypeId=qualification_id, WorkerId=worker_id, IntegerValue=value, SendNotification=False))

    # --- MTurk's rules the services report ---------------------------------------------------
    def fee_rate(self, *, assignments: int, qualifications: Any = None) -> Decimal:
        return fee_rate(assignments=assignments, masters=requires_masters(qualifications))

    def bonus_fee_rate(self) -> Decimal:
        return BONUS_FEE_RATE
