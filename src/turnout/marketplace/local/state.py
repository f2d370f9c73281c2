"""The requester side of the offline marketplace: MTurk's Requester API operations on
the store (moto's ``models.py``; the wire handlers that call these are ``operations.py``).

HIT types and HITs, assignments, money, worker blocks and mail are here; qualification
types in ``requester_quals.py``; the store, transactions and lazy time rules in
``store.py``; what workers do in ``worker_side.py`` (``state.workers``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import turnout.marketplace.local.errors as E
import turnout.marketplace.local.money as money
import turnout.marketplace.local.pagination as pagination
import turnout.marketplace.local.quals as quals

from .question import parse_question
from .records import (
    APPROVED,
    REJECTED,
    REVIEWABLE_STATUSES,
    SUBMITTED,
    Assignment,
    BonusPayment,
    Hit,
    Page,
    Transaction,
)
from .requester_quals import QualificationRequests
from .store import (
    DEFAULT_AUTO_APPROVAL_DELAY,
    DEFAULT_MAX_ASSIGNMENTS,
    FAULT_KINDS,
    MIN_REWARD,
    OVERRIDE_WINDOW,
    StoreUnusable,
    Tx,
    derive_hit_status,
    from_ms,
    new_id,
    to_ms,
)
from .worker_side import WorkerSide

__all__ = ["FAULT_KINDS", "MarketplaceState", "StoreUnusable", "derive_hit_status", "from_ms", "new_id",
           "parse_question", "to_ms"]


class MarketplaceState(QualificationRequests):
    """The offline MTurk: requester-side operations plus inspection helpers.

    ``state.workers`` gives the worker side (accept, submit, ...). Construct one per
    process; several instances may share ``path``.
    """

    @property
    def workers(self) -> WorkerSide:
        return WorkerSide(self)

    def _check_token(self, tx: Tx, scope: str, token: str | None) -> None:
        """Refuse a UniqueRequestToken seen in the last 24 h (MTurk: tokens expire after 24 h,
        and a repeat is an error naming the original request)."""
        if token is None:
            return
        row = tx.one("SELECT * FROM request_tokens WHERE scope = ? AND token = ?", scope, token)
        if row is None:
            return
        if scope == "HIT":
            # model doc, CreateHIT.UniqueRequestToken: "AWS.MechanicalTurk.HitAlreadyExists
            # error with a message containing the HITId". Wording around the ID: GUESS.
            raise E.RequestError(
                f"The HIT with UniqueRequestToken {token} already exists: HITId {row['result']}.",
                E.HIT_ALREADY_EXISTS,
            )
        # model doc, SendBonus / CreateAdditionalAssignmentsForHIT: "an error with a message
        # containing the request ID". TurkErrorCode and wording: GUESS.
        raise E.RequestError(
            f"The request with UniqueRequestToken {token} has already been processed: original request ID {row['request_id']}.",
            E.DUPLICATE_REQUEST,
        )

    @staticmethod
    def _claim_token(tx: Tx, scope: str, token: str | None, request_id: str | None, result: str | None) -> None:
        if token is not None:
            tx.run("INSERT OR REPLACE INTO request_tokens VALUES (?, ?, ?, ?, ?)", scope, token, tx.now_ms, result, request_id)

    def _check_requirements(self, tx: Tx, requirements: Sequence[Mapping[str, Any]]) -> None:
        for req in requirements:
            qtid = req["QualificationTypeId"]
            known = qtid in quals.SYSTEM_TYPES or tx.one(
                "SELECT 1 FROM qualification_types WHERE id = ? AND deleted_ms IS NULL", qtid
            ) is not None
            if not known:
                # GUESS: code and wording.
                raise E.RequestError(f"QualificationType {qtid} does not exist.", E.QUALIFICATION_TYPE_DOES_NOT_EXIST)
            quals.check_requirement(req, known)

    # ------------------------------------------------------------------ HIT types and HITs

    def _hit_type(self, tx: Tx, *, title: str, description: str, reward: Decimal, assignment_duration: int,
                  auto_approval_delay: int | None, keywords: str | None,
                  qualification_requirements: Sequence[Mapping[str, Any]] | None) -> str:
        reqs = [dict(r) for r in qualification_requirements or []]
        self._check_requirements(tx, reqs)
        if reward < MIN_REWARD:
            raise E.ParameterValidationError(f'The value "{money.fmt(reward)}" is not valid for the parameter Reward. It must be at least 0.01.')  # GUESS
        delay = DEFAULT_AUTO_APPROVAL_DELAY if auto_approval_delay is None else auto_approval_delay
        fingerprint = json.dumps([title, description, keywords, money.fmt(reward), assignment_duration, delay, reqs], sort_keys=True)
        row = tx.one("SELECT id FROM hit_types WHERE fingerprint = ?", fingerprint)
        if row:
            # model doc, CreateHITType: matching values return the existing HIT type.
            # GUESS: CreateHIT reuses a matching type too.
            return str(row["id"])
        type_id = new_id()
        tx.run("INSERT INTO hit_types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               type_id, new_id(), fingerprint, title, description, keywords, money.fmt(reward),
               assignment_duration, delay, json.dumps(reqs), tx.now_ms)
        return type_id

    def create_hit_type(self, *, title: str, description: str, reward: Decimal, assignment_duration: int,
                        auto_approval_delay: int | None = None, keywords: str | None = None,
                        qualification_requirements: Sequence[Mapping[str, Any]] | None = None) -> str:
        with self.transaction() as tx:
            return self._hit_type(tx, title=title, description=description, reward=reward,
                                  assignment_duration=assignment_duration, auto_approval_delay=auto_approval_delay,
                                  keywords=keywords, qualification_requirements=qualification_requirements)

    def create_hit(self, *, title: str, description: str, reward: Decimal, assignment_duration: int, lifetime: int,
                   max_assignments: int | None = None, auto_approval_delay: int | None = None,
                   keywords: str | None = None, question: str | None = None, requester_annotation: str | None = None,
                   qualification_requirements: Sequence[Mapping[str, Any]] | None = None,
                   unique_request_token: str | None = None, hit_layout_id: str | None = None,
                   request_id: str | None = None) -> Hit:
        with self.transaction() as tx:
            self._check_token(tx, "HIT", unique_request_token)
            type_id = self._hit_type(tx, title=title, description=description, reward=reward,
                                     assignment_duration=assignment_duration, auto_approval_delay=auto_approval_delay,
                                     keywords=keywords, qualification_requirements=qualification_requirements)
            return self._insert_hit(tx, type_id, lifetime=lifetime, max_assignments=max_assignments, question=question,
                                    requester_annotation=requester_annotation, unique_request_token=unique_request_token,
                                    hit_layout_id=hit_layout_id, request_id=request_id)

    def create_hit_with_hit_type(self, *, hit_type_id: str, lifetime: int, max_assignments: int | None = None,
                                 question: str | None = None, requester_annotation: str | None = None,
                                 unique_request_token: str | None = None, hit_layout_id: str | None = None,
                                 request_id: str | None = None) -> Hit:
        with self.transaction() as tx:
            self._check_token(tx, "HIT", unique_request_token)
            if tx.one("SELECT 1 FROM hit_types WHERE id = ?", hit_type_id) is None:
                raise E.RequestError(f"HITType {hit_type_id} does not exist.", E.HIT_TYPE_DOES_NOT_EXIST)  # GUESS wording
            return self._insert_hit(tx, hit_type_id, lifetime=lifetime, max_assignments=max_assignments, question=question,
                                    requester_annotation=requester_annotation, unique_request_token=unique_request_token,
                                    hit_layout_id=hit_layout_id, request_id=request_id)

    def _insert_hit(self, tx: Tx, type_id: str, *, lifetime: int, max_assignments: int | None, question: str | None,
                    requester_annotation: str | None, unique_request_token: str | None, hit_layout_id: str | None,
                    request_id: str | None) -> Hit:
        if hit_layout_id is not None:
            # The offline marketplace has no HIT layouts (they are made on the requester
            # website). Refuse loudly rather than create a HIT no one can display.
            raise E.RequestError(f"HITLayout {hit_layout_id} does not exist (turnout's offline marketplace has no layouts).",
                                 "AWS.MechanicalTurk.HITLayoutDoesNotExist")
        external_url = parse_question(question, allow_http=self.allow_http_external_url) if question else None
        trow = tx.one("SELECT * FROM hit_types WHERE id = ?", type_id)
        assert trow is not None
        reqs = json.loads(trow["qualification_requirements"])
        n = DEFAULT_MAX_ASSIGNMENTS if max_assignments is None else max_assignments
        masters = quals.requires_masters(reqs)
        reward, fee = money.reward_cost(Decimal(trow["reward"]), n, masters)
        # Observed: CreateHITWithHITType can fail for insufficient funds (facebookresearch/
        # Mephisto#342). GUESS: the amount checked is every assignment's reward plus fee,
        # and nothing is put on hold (payment happens at approval).
        if (reward + fee) * n > self._balance(tx):
            raise E.insufficient_funds()
        hit_id = new_id()
        expiration = tx.now_ms + lifetime * 1000
        tx.run("INSERT INTO hits (id, hit_type_id, question, external_url, hit_layout_id, requester_annotation, "
               "max_assignments, masters, created_ms, expiration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               hit_id, type_id, question, external_url, hit_layout_id, requester_annotation, n, int(masters),
               tx.now_ms, expiration)
        self._claim_token(tx, "HIT", unique_request_token, request_id, hit_id)
        self._event(tx, "HITCreated", tx.now_ms, hit_id=hit_id, hit_type_id=type_id)
        return self._live_hit(tx, hit_id)

    def get_hit(self, hit_id: str) -> Hit:
        with self.transaction() as tx:
            return self._live_hit(tx, hit_id)

    def list_hits(self, *, max_results: int | None = None, next_token: str | None = None) -> Page[Hit]:
        """Every non-deleted HIT, oldest first (GUESS: ordering by creation, ascending)."""
        size = pagination.page_size(max_results)
        with self.transaction() as tx:
            key = pagination.decode(next_token, "ListHITs", {})
            after = key[0] if key else 0
            rows = self._hit_rows(tx, "h.deleted_ms IS NULL AND h.seq > ? ORDER BY h.seq LIMIT ?", after, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListHITs", {}, [rows[-1]["seq"]]) if more else None
            return Page(self._snapshots(tx, rows), token)

    def list_reviewable_hits(self, *, hit_type_id: str | None = None, status: str = "Reviewable",
                             max_results: int | None = None, next_token: str | None = None) -> Page[Hit]:
        """HITs whose derived status is ``status`` (model doc: Reviewable is the default)."""
        size = pagination.page_size(max_results)
        filters = {"HITTypeId": hit_type_id, "Status": status}
        with self.transaction() as tx:
            key = pagination.decode(next_token, "ListReviewableHITs", filters)
            after = key[0] if key else 0
            found: list[Hit] = []
            last_seq = after
            more = False
            while True:
                clause = "h.deleted_ms IS NULL AND h.seq > ?" + (" AND h.hit_type_id = ?" if hit_type_id else "")
                args: list[Any] = [last_seq] + ([hit_type_id] if hit_type_id else [])
                rows = self._hit_rows(tx, clause + " ORDER BY h.seq LIMIT 200", *args)
                if not rows:
                    break
                for row, hit in zip(rows, self._snapshots(tx, rows), strict=True):
                    if hit.status != status:
                        last_seq = row["seq"]
                        continue
                    if len(found) == size:
                        more = True
                        break
                    found.append(hit)
                    last_seq = row["seq"]
                if more:
                    break
            seq_of_last = last_seq
            token = pagination.encode("ListReviewableHITs", filters, [seq_of_last]) if more else None
            return Page(found, token)

    def update_expiration(self, hit_id: str, expire_at: datetime) -> Hit:
        """Move a HIT's expiration (model doc, UpdateExpirationForHIT).

        A time in the past (or 0) expires the HIT now (model doc, UpdateExpirationForHIT).
        A later time extends it, also re-opening an expired HIT (HITExtended event). An
        earlier time that is still in the future is refused: MTurk's reference says expiry
        cannot be shortened to a future time (error code and wording: GUESS).
        """
        with self.transaction() as tx:
            hit = self._live_hit(tx, hit_id)
            current = to_ms(hit.expiration)
            target = to_ms(expire_at)
            if target <= tx.now_ms:
                tx.run("UPDATE hits SET expiration_ms = ? WHERE id = ?", min(current, tx.now_ms), hit_id)
                if current > tx.now_ms:
                    self._event(tx, "HITExpired", tx.now_ms, hit_id=hit_id)
            elif target < current:
                raise E.RequestError(
                    "The expiration of a HIT cannot be shortened to a time in the future; "
                    "pass a time in the past to expire it now.",
                    E.INVALID_EXPIRATION,
                )
            elif target > current:
                tx.run("UPDATE hits SET expiration_ms = ? WHERE id = ?", target, hit_id)
                self._event(tx, "HITExtended", tx.now_ms, hit_id=hit_id)
            return self._live_hit(tx, hit_id)

    def delete_hit(self, hit_id: str) -> None:
        """Dispose of a finished HIT.

        model doc, DeleteHIT: only a Reviewable HIT whose submitted assignments
        are all approved or rejected; jtjacques/mturk-manage#1 adds Reviewing. An expired
        HIT with no assignments is Reviewable, hence deletable (GUESS, follows from the
        derived status). Error code and wording: GUESS (boto/boto3#2107 calls the real
        text confusing).
        """
        with self.transaction() as tx:
            hit = self._live_hit(tx, hit_id)
            if hit.status not in ("Reviewable", "Reviewing"):
                raise E.RequestError(
                    f"This HIT is currently in the state '{hit.status}'. This operation can be called with a status of: Reviewable,Reviewing",
                    E.INVALID_HIT_STATE,
                )
            if hit.submitted:
                raise E.RequestError(
                    f"This HIT has {hit.submitted} submitted assignment(s) that are neither approved nor rejected; review them before deleting the HIT.",
                    E.INVALID_HIT_STATE,
                )
            tx.run("UPDATE hits SET deleted_ms = ? WHERE id = ?", tx.now_ms, hit_id)
            tx.run("DELETE FROM previews WHERE hit_id = ?", hit_id)
            self._event(tx, "HITDisposed", tx.now_ms, hit_id=hit_id)

    def create_additional_assignments(self, hit_id: str, count: int, *, unique_request_token: str | None = None,
                                      request_id: str | None = None) -> Hit:
        with self.transaction() as tx:
            self._check_token(tx, "Extend", unique_request_token)
            hit = self._live_hit(tx, hit_id)
            new_total = hit.max_assignments + count
            # model doc: a HIT created with fewer than 10 assignments cannot be extended to 10 or more.
            if hit.max_assignments < money.LARGE_HIT_THRESHOLD <= new_total:
                raise E.RequestError(
                    "HITs created with fewer than 10 assignments cannot be extended to have 10 or more assignments.",
                    E.INVALID_MAX_ASSIGNMENTS_INCREASE,
                )
            reward, fee = money.reward_cost(hit.reward, new_total, hit.masters_required)
            if (reward + fee) * count > self._balance(tx):  # GUESS, as for CreateHIT
                raise E.insufficient_funds()
            tx.run("UPDATE hits SET max_assignments = ? WHERE id = ?", new_total, hit_id)
            self._claim_token(tx, "Extend", unique_request_token, request_id, hit_id)
            self._event(tx, "HITExtended", tx.now_ms, hit_id=hit_id)
            return self._live_hit(tx, hit_id)

    def update_hit_review_status(self, hit_id: str, *, revert: bool = False) -> None:
        """Reviewable <-> Reviewing (model doc, UpdateHITReviewStatus)."""
        with self.transaction() as tx:
            self._live_hit(tx, hit_id)
            tx.run("UPDATE hits SET reviewing = ? WHERE id = ?", 0 if revert else 1, hit_id)

    # ------------------------------------------------------------------ assignments

    def _assignment_row(self, tx: Tx, assignment_id: str) -> sqlite3.Row:
        row = tx.one("SELECT * FROM assignments WHERE id = ?", assignment_id)
        if row is None:
            raise E.assignment_not_found(assignment_id)
        return row

    def list_assignments(self, hit_id: str, *, statuses: Sequence[str] | None = None, max_results: int | None = None,
                         next_token: str | None = None) -> Page[Assignment]:
        """Submitted/Approved/Rejected assignments, in submission order (GUESS: the legacy
        API's default sort, SubmitTime ascending). Works before the HIT is Reviewable
        (model doc)."""
        wanted = sorted(set(statuses or REVIEWABLE_STATUSES))
        size = pagination.page_size(max_results)
        filters = {"HITId": hit_id, "AssignmentStatuses": wanted}
        with self.transaction() as tx:
            self._live_hit(tx, hit_id)
            key = pagination.decode(next_token, "ListAssignmentsForHIT", filters)
            after_submit, after_seq = key if key else (-1, 0)
            marks = ",".join("?" * len(wanted))
            rows = tx.all(
                f"SELECT * FROM assignments WHERE hit_id = ? AND status IN ({marks}) "  # noqa: S608
                "AND (submit_ms > ? OR (submit_ms = ? AND seq > ?)) ORDER BY submit_ms, seq LIMIT ?",
                hit_id, *wanted, after_submit, after_submit, after_seq, size + 1,
            )
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListAssignmentsForHIT", filters, [rows[-1]["submit_ms"], rows[-1]["seq"]]) if more else None
            return Page([self._assignment(r) for r in rows], token)

    def get_assignment(self, assignment_id: str) -> tuple[Assignment, Hit]:
        """A reviewable assignment and its HIT (MTurk shows only Submitted/Approved/Rejected
        assignments of non-disposed HITs). Before submission the observed answer is
        "This operation can be called with a status of: Reviewable,Approved,Rejected"
        (facebookresearch/ParlAI code, TurkServer#56)."""
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            hit_rows = self._hit_rows(tx, "h.id = ? AND h.deleted_ms IS NULL", row["hit_id"])
            if not hit_rows:
                raise E.assignment_not_found(assignment_id)  # GUESS for assignments of deleted HITs
            if row["status"] not in REVIEWABLE_STATUSES:
                raise E.wrong_state("Reviewable,Approved,Rejected")
            return self._assignment(row), self._snapshots(tx, hit_rows)[0]


    def approve_assignment(self, assignment_id: str, *, requester_feedback: str | None = None, override_rejection: bool = False) -> None:
        """Approve and pay reward plus fees (model doc, ApproveAssignment).

        Approving twice fails with "...status of: Submitted" (observed: client code
        matches that text), despite the model's idempotent trait. OverrideRejection approves a
        Rejected assignment submitted within 30 days whose HIT is not deleted (model doc).
        """
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            status = row["status"]
            if status == REJECTED and override_rejection:
                hit_alive = tx.one("SELECT 1 FROM hits WHERE id = ? AND deleted_ms IS NULL", row["hit_id"]) is not None
                if not hit_alive:
                    raise E.hit_not_found(row["hit_id"])  # GUESS: code for "HIT deleted"
                if tx.now_ms - row["submit_ms"] > OVERRIDE_WINDOW // timedelta(milliseconds=1):
                    raise E.RequestError(
                        "A rejected assignment can be approved only within 30 days of its submission.",  # GUESS wording
                        E.OVERRIDE_WINDOW_PASSED,
                    )
            elif status != SUBMITTED:
                raise E.wrong_state("Submitted")
            self._approve_row(tx, row, at_ms=tx.now_ms, feedback=requester_feedback)

    def reject_assignment(self, assignment_id: str, *, requester_feedback: str) -> None:
        """Reject a Submitted assignment (observed error for anything else: NRGI#1384)."""
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            if row["status"] != SUBMITTED:
                raise E.wrong_state("Submitted")
            tx.run("UPDATE assignments SET status = ?, rejection_ms = ?, requester_feedback = ? WHERE id = ?",
                   REJECTED, tx.now_ms, requester_feedback, assignment_id)
            self._event(tx, "AssignmentRejected", tx.now_ms, hit_id=row["hit_id"], assignment_id=assignment_id, worker_id=row["worker_id"])

    # ------------------------------------------------------------------ money

    def send_bonus(self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str,
                   unique_request_token: str | None = None, request_id: str | None = None) -> BonusPayment:
        """Pay a bonus plus the 20% fee (model doc, SendBonus: MTurk charges
        20% commission on bonuses, at least $0.01).

        Rules: only for submitted/approved/rejected work; an in-flight assignment "does not
        exist" (observed, facebookresearch/Mephisto#1081). Only the worker who did the
        assignment can be paid (SendBonus docs, boto/boto3#2355; error wording GUESS).
        GUESS: bonuses on a rejected assignment, or one of a deleted HIT, are allowed.
        """
        with self.transaction() as tx:
            self._check_token(tx, "Bonus", unique_request_token)
            row = self._assignment_row(tx, assignment_id)
            if row["status"] not in REVIEWABLE_STATUSES:
                raise E.assignment_not_found(assignment_id)
            if row["worker_id"] != worker_id:
                raise E.RequestError(
                    f"Worker {worker_id} did not work on assignment {assignment_id}; only that assignment's worker can receive a bonus for it.",
                    E.WORKER_MISMATCH,
                )
            if amount <= 0:
                raise E.ParameterValidationError(f'The value "{money.fmt(amount)}" is not valid for the parameter BonusAmount. It must be greater than 0.')  # GUESS
            bonus, fee = money.bonus_cost(amount)
            self._debit(tx, "bonus", bonus, fee, tx.now_ms, assignment_id=assignment_id, hit_id=row["hit_id"], worker_id=worker_id)
            tx.run("INSERT INTO bonuses (worker_id, assignment_id, hit_id, amount, fee, reason, grant_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   worker_id, assignment_id, row["hit_id"], money.fmt(bonus), money.fmt(fee), reason, tx.now_ms)
            self._claim_token(tx, "Bonus", unique_request_token, request_id, assignment_id)
            return BonusPayment(worker_id, assignment_id, row["hit_id"], bonus, fee, reason, tx.now)

    def list_bonus_payments(self, *, hit_id: str | None = None, assignment_id: str | None = None,
                            max_results: int | None = None, next_token: str | None = None) -> Page[BonusPayment]:
        size = pagination.page_size(max_results)
        filters = {"HITId": hit_id, "AssignmentId": assignment_id}
        with self.transaction() as tx:
            if hit_id is not None and tx.one("SELECT 1 FROM hits WHERE id = ?", hit_id) is None:
                raise E.hit_not_found(hit_id)  # GUESS: unknown HIT is an error, not an empty list
            if assignment_id is not None:
                self._assignment_row(tx, assignment_id)
            key = pagination.decode(next_token, "ListBonusPayments", filters)
            column, value = ("hit_id", hit_id) if hit_id is not None else ("assignment_id", assignment_id)
            rows = tx.all(f"SELECT * FROM bonuses WHERE {column} = ? AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                          value, key[0] if key else 0, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListBonusPayments", filters, [rows[-1]["seq"]]) if more else None
            return Page([BonusPayment(r["worker_id"], r["assignment_id"], r["hit_id"], Decimal(r["amount"]), Decimal(r["fee"]),
                                      r["reason"], from_ms(r["grant_ms"])) for r in rows], token)

    def balance(self) -> Decimal:
        """Available balance. Starts at 10000.00 like the sandbox (always 10000.00 there),
        but is debited by approvals and bonuses."""
        with self.transaction() as tx:
            return self._balance(tx)

    def transactions(self) -> list[Transaction]:
        with self.transaction() as tx:
            return [Transaction(r["seq"], from_ms(r["ms"]), r["kind"], Decimal(r["amount"]), Decimal(r["fee"]),
                                Decimal(r["balance_after"]), r["assignment_id"], r["hit_id"], r["worker_id"])
                    for r in tx.all("SELECT * FROM ledger ORDER BY seq")]


    # ------------------------------------------------------------------ workers (registry), blocks and mail

    def create_worker_block(self, worker_id: str, reason: str) -> None:
        """Block a worker from this requester's HITs (model doc, CreateWorkerBlock); they can
        no longer find, preview or accept them. Unknown workers get the observed
        ParameterValidationError (aws/aws-sdk-java#2055)."""
        with self.transaction() as tx:
            self._require_worker(tx, worker_id)
            tx.run("INSERT INTO worker_blocks (worker_id, reason, created_ms) VALUES (?, ?, ?) "
                   "ON CONFLICT (worker_id) DO UPDATE SET reason = excluded.reason", worker_id, reason, tx.now_ms)

    def delete_worker_block(self, worker_id: str) -> None:
        """Unblock. GUESS: unblocking a worker who is not blocked succeeds silently."""
        with self.transaction() as tx:
            self._require_worker(tx, worker_id)
            tx.run("DELETE FROM worker_blocks WHERE worker_id = ?", worker_id)

    def list_worker_blocks(self, *, max_results: int | None = None, next_token: str | None = None) -> Page[tuple[str, str]]:
        size = pagination.page_size(max_results)
        with self.transaction() as tx:
            key = pagination.decode(next_token, "ListWorkerBlocks", {})
            rows = tx.all("SELECT * FROM worker_blocks WHERE seq > ? ORDER BY seq LIMIT ?", key[0] if key else 0, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListWorkerBlocks", {}, [rows[-1]["seq"]]) if more else None
            return Page([(r["worker_id"], r["reason"]) for r in rows], token)


    def notify_workers(self, *, subject: str, message: str, worker_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """Record a message for each worker who has reviewed work from this requester.

        model doc: mail goes only to workers whose work you approved or rejected. Others
        come back as failure statuses, not as an exception (observed: aws/aws-sdk-java#2055
        comment). Failure codes and wording: GUESS. Returns (WorkerId, code, message).
        """
        failures: list[tuple[str, str, str]] = []
        with self.transaction() as tx:
            for worker_id in dict.fromkeys(worker_ids):
                if tx.one("SELECT 1 FROM workers WHERE id = ?", worker_id) is None:
                    failures.append((worker_id, "HardFailure", f"Worker {worker_id} does not exist."))
                    continue
                reviewed = tx.one("SELECT 1 FROM assignments WHERE worker_id = ? AND status IN (?, ?) LIMIT 1", worker_id, APPROVED, REJECTED)
                if reviewed is None:
                    failures.append((worker_id, "HardFailure",
                                     f"Cannot send a message to worker {worker_id}: they have not done work for you that you approved or rejected."))
                    continue
                tx.run("INSERT INTO notifications (ms, worker_id, subject, message) VALUES (?, ?, ?, ?)", tx.now_ms, worker_id, subject, message)
        return failures

    def notifications(self) -> list[dict[str, Any]]:
        """Messages NotifyWorkers would have mailed (for inspection)."""
        with self.transaction() as tx:
            return [{"time": from_ms(r["ms"]), "worker_id": r["worker_id"], "subject": r["subject"], "message": r["message"]}
                    for r in tx.all("SELECT * FROM notifications ORDER BY seq")]

