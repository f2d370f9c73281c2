"""One function per MTurk operation: read the (already validated) parameters, call the
state, shape the result for the wire (moto's per-service ``responses.py``).

Each function is named after the operation in snake_case (``CreateHIT`` ->
``create_hit``), which is how ``protocol.py`` finds it; an operation without a function
here is answered with a loud "not implemented" error. Nothing here touches HTTP or SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name

import turnout.marketplace.local.money as money

from .records import Assignment, BonusPayment, Hit, Qualification, QualificationType
from .state import MarketplaceState


@dataclass(frozen=True)
class Context:
    """Per-request facts an operation may need besides its parameters."""

    request_id: str


Params = dict[str, Any]
Result = dict[str, Any]
Operation = Callable[[MarketplaceState, Params, Context], Result]


# --------------------------------------------------------------------------- shaping


def wire_time(instant: datetime) -> float:
    """Epoch seconds, the JSON protocol's timestamp form (botocore sends and reads epoch seconds)."""
    return round(instant.timestamp(), 3)


def _from_wire_time(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def hit_to_wire(hit: Hit) -> Result:
    return _drop_none({
        "HITId": hit.hit_id,
        "HITTypeId": hit.hit_type_id,
        "HITGroupId": hit.hit_group_id,
        "HITLayoutId": hit.hit_layout_id,
        "CreationTime": wire_time(hit.creation_time),
        "Title": hit.title,
        "Description": hit.description,
        "Question": hit.question,
        "Keywords": hit.keywords,
        "HITStatus": hit.status,
        "MaxAssignments": hit.max_assignments,
        "Reward": money.fmt(hit.reward),
        "AutoApprovalDelayInSeconds": hit.auto_approval_delay,
        "Expiration": wire_time(hit.expiration),
        "AssignmentDurationInSeconds": hit.assignment_duration,
        "RequesterAnnotation": hit.requester_annotation,
        "QualificationRequirements": hit.qualification_requirements,
        "HITReviewStatus": hit.review_status,
        "NumberOfAssignmentsPending": hit.pending,
        "NumberOfAssignmentsAvailable": hit.available,
        "NumberOfAssignmentsCompleted": hit.completed,
    })


def assignment_to_wire(a: Assignment) -> Result:
    def t(value: datetime | None) -> float | None:
        return wire_time(value) if value is not None else None

    return _drop_none({
        "AssignmentId": a.assignment_id,
        "WorkerId": a.worker_id,
        "HITId": a.hit_id,
        "AssignmentStatus": a.status,
        "AutoApprovalTime": t(a.auto_approval_time),
        "AcceptTime": t(a.accept_time),
        "SubmitTime": t(a.submit_time),
        "ApprovalTime": t(a.approval_time),
        "RejectionTime": t(a.rejection_time),
        "Deadline": t(a.deadline),
        "Answer": a.answer,
        "RequesterFeedback": a.requester_feedback,
    })


def qualification_type_to_wire(q: QualificationType) -> Result:
    return _drop_none({
        "QualificationTypeId": q.qualification_type_id,
        "CreationTime": wire_time(q.creation_time),
        "Name": q.name,
        "Description": q.description,
        "Keywords": q.keywords,
        "QualificationTypeStatus": q.status,
        "Test": q.test,
        "TestDurationInSeconds": q.test_duration,
        "AnswerKey": q.answer_key,
        "RetryDelayInSeconds": q.retry_delay,
        "IsRequestable": q.is_requestable,
        "AutoGranted": q.auto_granted,
        "AutoGrantedValue": q.auto_granted_value,
    })


def qualification_to_wire(q: Qualification) -> Result:
    return _drop_none({
        "QualificationTypeId": q.qualification_type_id,
        "WorkerId": q.worker_id,
        "GrantTime": wire_time(q.grant_time),
        "IntegerValue": q.integer_value,
        "Status": q.status,
    })


def bonus_to_wire(b: BonusPayment) -> Result:
    return {
        "WorkerId": b.worker_id,
        "BonusAmount": money.fmt(b.amount),
        "AssignmentId": b.assignment_id,
        "Reason": b.reason,
        "GrantTime": wire_time(b.grant_time),
    }


def _page(key: str, items: list[Result], next_token: str | None) -> Result:
    out: Result = {"NumResults": len(items), key: items}
    if next_token:
        out["NextToken"] = next_token
    return out


# --------------------------------------------------------------------------- HITs


def create_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    hit = state.create_hit(
        title=p["Title"], description=p["Description"], reward=money.parse(p["Reward"]),
        assignment_duration=p["AssignmentDurationInSeconds"], lifetime=p["LifetimeInSeconds"],
        max_assignments=p.get("MaxAssignments"), auto_approval_delay=p.get("AutoApprovalDelayInSeconds"),
        keywords=p.get("Keywords"), question=p.get("Question"), requester_annotation=p.get("RequesterAnnotation"),
        qualification_requirements=p.get("QualificationRequirements"), unique_request_token=p.get("UniqueRequestToken"),
        hit_layout_id=p.get("HITLayoutId"), request_id=ctx.request_id,
    )
    return {"HIT": hit_to_wire(hit)}


def create_hit_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    type_id = state.create_hit_type(
        title=p["Title"], description=p["Description"], reward=money.parse(p["Reward"]),
        assignment_duration=p["AssignmentDurationInSeconds"], auto_approval_delay=p.get("AutoApprovalDelayInSeconds"),
        keywords=p.get("Keywords"), qualification_requirements=p.get("QualificationRequirements"),
    )
    return {"HITTypeId": type_id}


def create_hit_with_hit_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    hit = state.create_hit_with_hit_type(
        hit_type_id=p["HITTypeId"], lifetime=p["LifetimeInSeconds"], max_assignments=p.get("MaxAssignments"),
        question=p.get("Question"), requester_annotation=p.get("RequesterAnnotation"),
        unique_request_token=p.get("UniqueRequestToken"), hit_layout_id=p.get("HITLayoutId"), request_id=ctx.request_id,
    )
    return {"HIT": hit_to_wire(hit)}


def get_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    return {"HIT": hit_to_wire(state.get_hit(p["HITId"]))}


def list_hits(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_hits(max_results=p.get("MaxResults"), next_token=p.get("NextToken"))
    return _page("HITs", [hit_to_wire(h) for h in page.items], page.next_token)


def list_reviewable_hits(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_reviewable_hits(hit_type_id=p.get("HITTypeId"), status=p.get("Status", "Reviewable"),
                                      max_results=p.get("MaxResults"), next_token=p.get("NextToken"))
    return _page("HITs", [hit_to_wire(h) for h in page.items], page.next_token)


def update_expiration_for_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.update_expiration(p["HITId"], _from_wire_time(p["ExpireAt"]))
    return {}


def update_hit_review_status(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.update_hit_review_status(p["HITId"], revert=p.get("Revert", False))
    return {}


def delete_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.delete_hit(p["HITId"])
    return {}


def create_additional_assignments_for_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.create_additional_assignments(p["HITId"], p["NumberOfAdditionalAssignments"],
                                        unique_request_token=p.get("UniqueRequestToken"), request_id=ctx.request_id)
    return {}


# --------------------------------------------------------------------------- assignments and money


def list_assignments_for_hit(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_assignments(p["HITId"], statuses=p.get("AssignmentStatuses"), max_results=p.get("MaxResults"),
                                  next_token=p.get("NextToken"))
    return _page("Assignments", [assignment_to_wire(a) for a in page.items], page.next_token)


def get_assignment(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    assignment, hit = state.get_assignment(p["AssignmentId"])
    return {"Assignment": assignment_to_wire(assignment), "HIT": hit_to_wire(hit)}


def approve_assignment(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.approve_assignment(p["AssignmentId"], requester_feedback=p.get("RequesterFeedback"),
                             override_rejection=p.get("OverrideRejection", False))
    return {}


def reject_assignment(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.reject_assignment(p["AssignmentId"], requester_feedback=p["RequesterFeedback"])
    return {}


def send_bonus(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.send_bonus(worker_id=p["WorkerId"], assignment_id=p["AssignmentId"], amount=money.parse(p["BonusAmount"]),
                     reason=p["Reason"], unique_request_token=p.get("UniqueRequestToken"), request_id=ctx.request_id)
    return {}


def list_bonus_payments(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_bonus_payments(hit_id=p.get("HITId"), assignment_id=p.get("AssignmentId"),
                                     max_results=p.get("MaxResults"), next_token=p.get("NextToken"))
    return _page("BonusPayments", [bonus_to_wire(b) for b in page.items], page.next_token)


def get_account_balance(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    # GUESS: nothing is ever on hold offline (funds move at approval and bonus time).
    return {"AvailableBalance": money.fmt(state.balance()), "OnHoldBalance": "0.00"}


# --------------------------------------------------------------------------- qualifications


def create_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    qtype = state.create_qualification_type(
        name=p["Name"], description=p["Description"], status=p["QualificationTypeStatus"], keywords=p.get("Keywords"),
        retry_delay=p.get("RetryDelayInSeconds"), test=p.get("Test"), answer_key=p.get("AnswerKey"),
        test_duration=p.get("TestDurationInSeconds"), auto_granted=p.get("AutoGranted", False),
        auto_granted_value=p.get("AutoGrantedValue"),
    )
    return {"QualificationType": qualification_type_to_wire(qtype)}


def get_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    return {"QualificationType": qualification_type_to_wire(state.get_qualification_type(p["QualificationTypeId"]))}


_UPDATABLE = {
    "Description": "description", "QualificationTypeStatus": "status", "Test": "test", "AnswerKey": "answer_key",
    "TestDurationInSeconds": "test_duration", "RetryDelayInSeconds": "retry_delay", "AutoGranted": "auto_granted",
    "AutoGrantedValue": "auto_granted_value",
}


def update_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    changes = {field: p[name] for name, field in _UPDATABLE.items() if name in p}
    qtype = state.update_qualification_type(p["QualificationTypeId"], **changes)
    return {"QualificationType": qualification_type_to_wire(qtype)}


def list_qualification_types(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_qualification_types(
        must_be_requestable=p["MustBeRequestable"], query=p.get("Query"),
        must_be_owned_by_caller=p.get("MustBeOwnedByCaller", False), max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    return _page("QualificationTypes", [qualification_type_to_wire(q) for q in page.items], page.next_token)


def associate_qualification_with_worker(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.associate_qualification(p["QualificationTypeId"], p["WorkerId"], integer_value=p.get("IntegerValue"),
                                  send_notification=p.get("SendNotification", True))
    return {}


def disassociate_qualification_from_worker(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.disassociate_qualification(p["QualificationTypeId"], p["WorkerId"], reason=p.get("Reason"))
    return {}


def list_workers_with_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_workers_with_qualification(p["QualificationTypeId"], status=p.get("Status"),
                                                 max_results=p.get("MaxResults"), next_token=p.get("NextToken"))
    return _page("Qualifications", [qualification_to_wire(q) for q in page.items], page.next_token)


def get_qualification_score(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    return {"Qualification": qualification_to_wire(state.get_qualification_score(p["QualificationTypeId"], p["WorkerId"]))}


def delete_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.delete_qualification_type(p["QualificationTypeId"])
    return {}


def list_hits_for_qualification_type(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_hits_for_qualification_type(p["QualificationTypeId"], max_results=p.get("MaxResults"),
                                                  next_token=p.get("NextToken"))
    return _page("HITs", [hit_to_wire(h) for h in page.items], page.next_token)


def create_worker_block(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.create_worker_block(p["WorkerId"], p["Reason"])
    return {}


def delete_worker_block(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    state.delete_worker_block(p["WorkerId"])
    return {}


def list_worker_blocks(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    page = state.list_worker_blocks(max_results=p.get("MaxResults"), next_token=p.get("NextToken"))
    return _page("WorkerBlocks", [{"WorkerId": w, "Reason": r} for w, r in page.items], page.next_token)


def notify_workers(state: MarketplaceState, p: Params, ctx: Context) -> Result:
    failures = state.notify_workers(subject=p["Subject"], message=p["MessageText"], worker_ids=p["WorkerIds"])
    return {"NotifyWorkersFailureStatuses": [
        {"NotifyWorkersFailureCode": code, "NotifyWorkersFailureMessage": message, "WorkerId": worker_id}
        for worker_id, code, message in failures
    ]}


def handler_for(operation: str) -> Operation | None:
    """The function implementing an MTurk operation, or None when turnout lacks it."""
    func = globals().get(xform_name(operation))
    return func if callable(func) and not isinstance(func, type) else None
