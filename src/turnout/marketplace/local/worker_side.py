"""The worker side of the offline marketplace: a registry of workers and what they can do.

MTurk's Requester API never shows this side (accepts, returns and abandons are visible
only as notifications), so it has its own Python API here, used by:
* the simulated-worker driver (written on top of this module) that walks a study over HTTP;
* the control API (``/_control/``) and the worker-site pages where a person acts as a worker;
* tests that need assignments to exist.

A worker's journey, as on MTurk: find an assignable HIT they qualify for -> preview it
(counts as pending for a while) -> accept (an assignment with a deadline) -> open the
ExternalURL with ``assignmentId``, ``hitId``, ``turkSubmitTo`` and ``workerId`` appended ->
submit through ``{turkSubmitTo}/mturk/externalSubmit`` (or return it, or let the deadline
pass, which abandons it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import turnout.marketplace.local.quals as quals

from .errors import WorkerActionRefused
from .records import ACCEPTED, APPROVED, REJECTED, RETURNED, SUBMITTED, Assignment, Hit, Worker
from .store import PREVIEW_WINDOW, Store, Tx, new_id, new_worker_id

__all__ = ["PREVIEW_ASSIGNMENT_ID", "WorkerSide", "answer_xml", "task_url"]

# MTurk's ExternalQuestion contract: in preview, assignmentId is this value.
PREVIEW_ASSIGNMENT_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
QFA_NAMESPACE = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"


def answer_xml(answers: Mapping[str, str]) -> str:
    """Form fields as the QuestionFormAnswers document MTurk stores as ``Answer``.

    Each field becomes a FreeText answer, as MTurk does for an ExternalQuestion's
    externalSubmit form (the schema is the public QuestionFormAnswers.xsd).
    """
    parts = [f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<QuestionFormAnswers xmlns="{QFA_NAMESPACE}">']
    for name, value in answers.items():
        parts.append(f"<Answer><QuestionIdentifier>{escape(name)}</QuestionIdentifier><FreeText>{escape(value)}</FreeText></Answer>")
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def task_url(external_url: str, *, hit_id: str, assignment_id: str | None, worker_id: str | None, turk_submit_to: str) -> str:
    """The URL MTurk frames for a worker: ExternalURL plus its four parameters.

    In preview ``assignmentId`` is ASSIGNMENT_ID_NOT_AVAILABLE and MTurk sends no workerId
    (MTurk's ExternalQuestion contract). Existing query parameters of ExternalURL are kept.
    """
    parts = urlsplit(external_url)
    params = {"assignmentId": assignment_id or PREVIEW_ASSIGNMENT_ID, "hitId": hit_id, "turkSubmitTo": turk_submit_to}
    if assignment_id and worker_id:
        params["workerId"] = worker_id
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# register()'s keyword attributes and their JSON types (the control API checks them first).
WORKER_ATTRIBUTES: dict[str, type] = {"percent_approved": int, "number_approved": int, "country": str,
                                      "subdivision": str, "masters": bool, "adult": bool}


class WorkerSide:
    """Worker registry and worker actions over the marketplace store (``MarketplaceState.workers``)."""

    def __init__(self, state: Store) -> None:
        self.state = state

    # ------------------------------------------------------------------ registry

    def register(self, worker_id: str | None = None, *, percent_approved: int = 100, number_approved: int = 1000,
                 country: str = "US", subdivision: str | None = None, masters: bool = False, adult: bool = True) -> Worker:
        """Add a worker (or update one with the same ID). IDs look like ``A2YUCJ28XANFOX``."""
        worker = Worker(worker_id or new_worker_id(), percent_approved, number_approved, country.upper(),
                        subdivision.upper() if subdivision else None, masters, adult)
        _check_worker(worker)
        with self.state.transaction() as tx:
            tx.run("INSERT INTO workers (id, percent_approved, number_approved, country, subdivision, masters, adult) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET percent_approved = excluded.percent_approved, "
                   "number_approved = excluded.number_approved, country = excluded.country, subdivision = excluded.subdivision, "
                   "masters = excluded.masters, adult = excluded.adult",
                   worker.worker_id, worker.percent_approved, worker.number_approved, worker.country, worker.subdivision,
                   int(worker.masters), int(worker.adult))
        return worker

    def seed(self, count: int, **attributes: Any) -> list[Worker]:
        """``count`` new workers sharing ``attributes`` (see ``register``)."""
        return [self.register(**attributes) for _ in range(count)]

    def get(self, worker_id: str) -> Worker:
        with self.state.transaction() as tx:
            return self._worker(tx, worker_id)

    def all(self) -> list[Worker]:
        with self.state.transaction() as tx:
            return [Store._worker(r) for r in tx.all("SELECT * FROM workers ORDER BY seq")]

    @staticmethod
    def _worker(tx: Tx, worker_id: str) -> Worker:
        row = tx.one("SELECT * FROM workers WHERE id = ?", worker_id)
        if row is None:
            raise WorkerActionRefused("UnknownWorker", f"Worker {worker_id} is not registered in the offline marketplace.")
        return Store._worker(row)

    # ------------------------------------------------------------------ finding work

    def assignable_hits(self, worker_id: str, *, limit: int = 100) -> list[Hit]:
        """HITs this worker would find on the worker site: unexpired, with a free slot, not
        already worked on by them, and not hidden by a DiscoverPreviewAndAccept requirement
        they fail (model doc, ActionsGuarded). Requirements guarding only Accept do not hide
        a HIT: on MTurk such HITs are listed but cannot be accepted."""
        out: list[Hit] = []
        with self.state.transaction() as tx:
            worker = self._worker(tx, worker_id)
            if self.state._blocked(tx, worker_id):
                return []
            custom = self.state._custom_quals(tx, worker_id)
            after = 0
            while len(out) < limit:
                # The free-slot and worked-on rules of _has_free_slot/_has_worked_on, in SQL:
                # a search past many full HITs then costs index probes, not a snapshot and
                # two queries per HIT in Python (232 ms for 1,111 full HITs before).
                rows = self.state._hit_rows(
                    tx,
                    "h.deleted_ms IS NULL AND h.expiration_ms > ? AND h.seq > ? "
                    f"AND (SELECT COUNT(*) FROM assignments a WHERE a.hit_id = h.id AND a.status IN ({_TAKEN_MARKS})) "
                    "< h.max_assignments "
                    "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.hit_id = h.id AND a.worker_id = ? "
                    f"AND a.status IN ({_TAKEN_MARKS})) ORDER BY h.seq LIMIT 200",
                    tx.now_ms, after, *_TAKEN, worker_id, *_TAKEN)
                if not rows:
                    break
                after = rows[-1]["seq"]
                for hit in self.state._snapshots(tx, rows):
                    if len(out) >= limit:
                        break
                    ok, _ = quals.allowed(hit.qualification_requirements, worker, custom, quals.DISCOVER)
                    if ok:
                        out.append(hit)
        return out

    def hit(self, hit_id: str) -> Hit:
        """A HIT as the worker site shows it (raises if deleted)."""
        with self.state.transaction() as tx:
            return self._hit(tx, hit_id)

    def _hit(self, tx: Tx, hit_id: str) -> Hit:
        rows = self.state._hit_rows(tx, "h.id = ? AND h.deleted_ms IS NULL", hit_id)
        if not rows:
            raise WorkerActionRefused("UnknownHIT", f"HIT {hit_id} does not exist or has been deleted.")
        return self.state._snapshots(tx, rows)[0]

    def _refuse_blocked(self, tx: Tx, worker_id: str) -> None:
        if self.state._blocked(tx, worker_id):
            raise WorkerActionRefused("Blocked", f"Worker {worker_id} is blocked by this requester.")

    @staticmethod
    def _has_free_slot(tx: Tx, hit: Hit) -> bool:
        # Previews never block an accept; only accepted and finished assignments take slots.
        row = tx.one("SELECT COUNT(*) FROM assignments WHERE hit_id = ? AND status IN (?, ?, ?, ?)",
                     hit.hit_id, ACCEPTED, SUBMITTED, APPROVED, REJECTED)
        return row is not None and row[0] < hit.max_assignments

    @staticmethod
    def _has_worked_on(tx: Tx, hit_id: str, worker_id: str) -> bool:
        # GUESS: a worker holds at most one assignment per HIT; after returning or
        # abandoning it they may accept it again.
        row = tx.one("SELECT 1 FROM assignments WHERE hit_id = ? AND worker_id = ? AND status IN (?, ?, ?, ?)",
                     hit_id, worker_id, ACCEPTED, SUBMITTED, APPROVED, REJECTED)
        return row is not None

    # ------------------------------------------------------------------ actions

    def preview(self, worker_id: str, hit_id: str) -> Hit:
        """Look at a HIT without accepting it. The preview counts in the HIT's
        NumberOfAssignmentsPending (MTurk: "being previewed or accepted but not yet
        submitted, returned or abandoned") for PREVIEW_WINDOW
        (GUESS: 5 minutes) or until the worker accepts."""
        with self.state.transaction() as tx:
            worker = self._worker(tx, worker_id)
            hit = self._hit(tx, hit_id)
            self._refuse_blocked(tx, worker_id)
            if tx.now >= hit.expiration:
                raise WorkerActionRefused("HITExpired", f"HIT {hit_id} has expired.")
            ok, qtid = quals.allowed(hit.qualification_requirements, worker, self.state._custom_quals(tx, worker_id), quals.PREVIEW)
            if not ok:
                raise WorkerActionRefused("NotQualified", f"Worker {worker_id} does not meet qualification {qtid} required to preview HIT {hit_id}.")
            until = tx.now_ms + PREVIEW_WINDOW // _MS
            tx.run("INSERT INTO previews VALUES (?, ?, ?) ON CONFLICT (hit_id, worker_id) DO UPDATE SET until_ms = excluded.until_ms",
                   hit_id, worker_id, until)
            return self._hit(tx, hit_id)

    def accept(self, worker_id: str, hit_id: str) -> Assignment:
        """Accept a HIT: a new assignment whose deadline is accept time plus the HIT's
        AssignmentDurationInSeconds (model doc)."""
        with self.state.transaction() as tx:
            worker = self._worker(tx, worker_id)
            hit = self._hit(tx, hit_id)
            self._refuse_blocked(tx, worker_id)
            if tx.now >= hit.expiration:
                raise WorkerActionRefused("HITExpired", f"HIT {hit_id} has expired.")
            if self._has_worked_on(tx, hit_id, worker_id):
                raise WorkerActionRefused("AlreadyWorkedOn", f"Worker {worker_id} already has an assignment for HIT {hit_id}.")
            if not self._has_free_slot(tx, hit):
                raise WorkerActionRefused("NoAssignmentsAvailable", f"HIT {hit_id} has no assignments available.")
            ok, qtid = quals.allowed(hit.qualification_requirements, worker, self.state._custom_quals(tx, worker_id), quals.ACCEPT)
            if not ok:
                raise WorkerActionRefused("NotQualified", f"Worker {worker_id} does not meet qualification {qtid} required to accept HIT {hit_id}.")
            assignment_id = new_id()
            deadline = tx.now_ms + hit.assignment_duration * 1000
            tx.run("INSERT INTO assignments (id, hit_id, worker_id, status, accept_ms, deadline_ms) VALUES (?, ?, ?, ?, ?, ?)",
                   assignment_id, hit_id, worker_id, ACCEPTED, tx.now_ms, deadline)
            tx.run("DELETE FROM previews WHERE hit_id = ? AND worker_id = ?", hit_id, worker_id)
            self.state._event(tx, "AssignmentAccepted", tx.now_ms, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id)
            return self._assignment(tx, assignment_id)

    def return_assignment(self, assignment_id: str, *, worker_id: str | None = None) -> Assignment:
        """Give an accepted assignment back; its slot becomes available again."""
        with self.state.transaction() as tx:
            row = self._own_accepted(tx, assignment_id, worker_id)
            tx.run("UPDATE assignments SET status = ?, returned_ms = ? WHERE id = ?", RETURNED, tx.now_ms, assignment_id)
            self.state._event(tx, "AssignmentReturned", tx.now_ms, hit_id=row["hit_id"], assignment_id=assignment_id, worker_id=row["worker_id"])
            return self._assignment(tx, assignment_id)

    def submit(self, assignment_id: str, answers: Mapping[str, str] | None = None, *, worker_id: str | None = None) -> Assignment:
        """Submit an accepted assignment before its deadline (what ``externalSubmit`` does).

        The answers become the assignment's QuestionFormAnswers ``Answer``; the assignment
        is auto-approved AutoApprovalDelayInSeconds later unless reviewed (model doc).
        """
        with self.state.transaction() as tx:
            row = self._own_accepted(tx, assignment_id, worker_id)
            delay = tx.one("SELECT t.auto_approval_delay FROM hits h JOIN hit_types t ON t.id = h.hit_type_id WHERE h.id = ?", row["hit_id"])
            assert delay is not None
            tx.run("UPDATE assignments SET status = ?, submit_ms = ?, auto_approval_ms = ?, answer = ? WHERE id = ?",
                   SUBMITTED, tx.now_ms, tx.now_ms + delay[0] * 1000, answer_xml(answers or {}), assignment_id)
            self.state._event(tx, "AssignmentSubmitted", tx.now_ms, hit_id=row["hit_id"], assignment_id=assignment_id, worker_id=row["worker_id"])
            return self._assignment(tx, assignment_id)

    def assignment(self, assignment_id: str) -> Assignment:
        """Any assignment, in any status (the Requester API shows only reviewable ones)."""
        with self.state.transaction() as tx:
            return self._assignment(tx, assignment_id)

    def assignments_of(self, worker_id: str) -> list[Assignment]:
        with self.state.transaction() as tx:
            return [Store._assignment(r) for r in tx.all("SELECT * FROM assignments WHERE worker_id = ? ORDER BY seq", worker_id)]

    @staticmethod
    def _assignment(tx: Tx, assignment_id: str) -> Assignment:
        row = tx.one("SELECT * FROM assignments WHERE id = ?", assignment_id)
        if row is None:
            raise WorkerActionRefused("UnknownAssignment", f"Assignment {assignment_id} does not exist.")
        return Store._assignment(row)

    @staticmethod
    def _own_accepted(tx: Tx, assignment_id: str, worker_id: str | None) -> Any:
        row = tx.one("SELECT * FROM assignments WHERE id = ?", assignment_id)
        if row is None:
            raise WorkerActionRefused("UnknownAssignment", f"Assignment {assignment_id} does not exist.")
        if worker_id is not None and row["worker_id"] != worker_id:
            raise WorkerActionRefused("WrongWorker", f"Assignment {assignment_id} belongs to another worker.")
        if row["status"] != ACCEPTED:
            # Includes assignments abandoned because their deadline passed (settled lazily).
            raise WorkerActionRefused("NotAccepted", f"Assignment {assignment_id} is {row['status']}, not Accepted.")
        return row

    def submit_key(self, assignment_id: str) -> str:
        """The externalSubmit proof for ``assignment_id``: give it only to whoever accepted it
        (sent as cookie ``turnout_submit_<assignment id>``; see ``MarketplaceState.submit_key``)."""
        return self.state.submit_key(assignment_id)

    def task_url_for(self, assignment: Assignment | None, hit: Hit, *, turk_submit_to: str) -> str | None:
        """The ExternalURL to open for an accepted assignment (or a preview when None)."""
        if hit.external_url is None:
            return None
        return task_url(hit.external_url, hit_id=hit.hit_id, assignment_id=assignment.assignment_id if assignment else None,
                        worker_id=assignment.worker_id if assignment else None, turk_submit_to=turk_submit_to)


_MS = timedelta(milliseconds=1)
# Statuses that hold a slot of a HIT (and count as the worker having worked on it).
_TAKEN = (ACCEPTED, SUBMITTED, APPROVED, REJECTED)
_TAKEN_MARKS = ",".join("?" * len(_TAKEN))


def _check_worker(worker: Worker) -> None:
    if not re.fullmatch(r"A[A-Z0-9]{1,63}", worker.worker_id):
        raise ValueError(f"WorkerId {worker.worker_id!r} must match ^A[A-Z0-9]+$ (botocore model, CustomerId)")
    if not 0 <= worker.percent_approved <= 100:
        raise ValueError("percent_approved must be between 0 and 100")
    if worker.number_approved < 0:
        raise ValueError("number_approved must not be negative")
    if len(worker.country) != 2 or (worker.subdivision is not None and len(worker.subdivision) != 2):
        raise ValueError("country and subdivision are two-letter codes (botocore model, Locale)")


def worker_dict(worker: Worker) -> dict[str, Any]:
    return asdict(worker)
