"""Qualification types on the offline marketplace: create, grant, score, list (the
requester operations MTurk groups under "Qualifications"; the requirement rules a worker
must meet are ``quals.py``)."""

from __future__ import annotations

import sqlite3
from typing import Any

import turnout.marketplace.local.errors as E
import turnout.marketplace.local.pagination as pagination
import turnout.marketplace.local.quals as quals

from .question import parse_question
from .records import (
    Hit,
    Page,
    Qualification,
    QualificationType,
)
from .store import EPOCH, Store, Tx, from_ms, new_id

__all__ = ["QualificationRequests"]


class QualificationRequests(Store):
    """Requester operations on qualification types and workers' qualifications."""


    @staticmethod
    def _qtype(row: sqlite3.Row) -> QualificationType:
        return QualificationType(
            qualification_type_id=row["id"], name=row["name"], description=row["description"], status=row["status"],
            creation_time=from_ms(row["created_ms"]), keywords=row["keywords"], retry_delay=row["retry_delay"],
            test=row["test"], answer_key=row["answer_key"], test_duration=row["test_duration"],
            auto_granted=bool(row["auto_granted"]), auto_granted_value=row["auto_granted_value"],
        )

    @staticmethod
    def _system_qtype(qtid: str) -> QualificationType:
        name, description = quals.SYSTEM_TYPES[qtid]
        # System types cannot be requested by workers (model doc, MustBeRequestable).
        return QualificationType(qtid, name, description, "Active", EPOCH, is_requestable=False, system=True)

    def _own_qtype_row(self, tx: Tx, qtid: str) -> sqlite3.Row:
        row = tx.one("SELECT * FROM qualification_types WHERE id = ? AND deleted_ms IS NULL", qtid)
        if row is None:
            raise E.RequestError(f"QualificationType {qtid} does not exist.", E.QUALIFICATION_TYPE_DOES_NOT_EXIST)  # GUESS wording
        return row

    def create_qualification_type(self, *, name: str, description: str, status: str, keywords: str | None = None,
                                  retry_delay: int | None = None, test: str | None = None, answer_key: str | None = None,
                                  test_duration: int | None = None, auto_granted: bool = False,
                                  auto_granted_value: int | None = None) -> QualificationType:
        with self.transaction() as tx:
            if tx.one("SELECT 1 FROM qualification_types WHERE name = ? AND deleted_ms IS NULL", name):
                # Observed code and wording (legacy API XML sample; Dallinger matches the text).
                raise E.RequestError(
                    "You have already created a QualificationType with this name. A QualificationType's name must be "
                    "unique among all of the QualificationTypes created by the same user.",
                    E.QUALIFICATION_TYPE_ALREADY_EXISTS,
                )
            if test is not None:
                parse_question(test, allow_http=False)
            qtid = new_id()
            tx.run("INSERT INTO qualification_types (id, name, description, keywords, status, retry_delay, test, answer_key, "
                   "test_duration, auto_granted, auto_granted_value, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   qtid, name, description, keywords, status, retry_delay, test, answer_key, test_duration,
                   int(auto_granted), auto_granted_value if auto_granted else None, tx.now_ms)
            return self._qtype(self._own_qtype_row(tx, qtid))

    def get_qualification_type(self, qtid: str) -> QualificationType:
        if qtid in quals.SYSTEM_TYPES:
            return self._system_qtype(qtid)
        with self.transaction() as tx:
            return self._qtype(self._own_qtype_row(tx, qtid))

    def update_qualification_type(self, qtid: str, **changes: Any) -> QualificationType:
        """Change description, status, test, retry delay or auto-grant (model doc,
        UpdateQualificationType: Name and Keywords are fixed; a type with a test cannot
        become AutoGranted)."""
        allowed = {"description", "status", "test", "answer_key", "test_duration", "retry_delay", "auto_granted", "auto_granted_value"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"cannot update {sorted(unknown)}")
        with self.transaction() as tx:
            row = self._own_qtype_row(tx, qtid)
            if changes.get("auto_granted") and (row["test"] or changes.get("test")):
                raise E.ParameterValidationError("A Qualification type with a Test cannot be AutoGranted.")
            if changes.get("test") is not None:
                parse_question(changes["test"], allow_http=False)
                changes.setdefault("answer_key", None)  # model doc: a new Test without AnswerKey has none
            columns = {"status": "status"}
            for field, value in changes.items():
                column = columns.get(field, field)
                if field == "auto_granted":
                    value = int(bool(value))
                tx.run(f"UPDATE qualification_types SET {column} = ? WHERE id = ?", value, qtid)  # noqa: S608 - allow-listed
            return self._qtype(self._own_qtype_row(tx, qtid))

    def list_qualification_types(self, *, must_be_requestable: bool, query: str | None = None,
                                 must_be_owned_by_caller: bool = False, max_results: int | None = None,
                                 next_token: str | None = None) -> Page[QualificationType]:
        """The requester's types (and, unless restricted, the system types), filtered by a
        case-insensitive substring ``query`` on name, description and keywords (GUESS: the
        real search is a full-text one and eventually consistent: Dallinger polls until a
        new type shows up)."""
        size = pagination.page_size(max_results)
        filters = {"MustBeRequestable": must_be_requestable, "Query": query, "MustBeOwnedByCaller": must_be_owned_by_caller}
        with self.transaction() as tx:
            key = pagination.decode(next_token, "ListQualificationTypes", filters)
            after = key[0] if key else -(10**9)
            keyed: list[tuple[int, QualificationType]] = []
            if not must_be_owned_by_caller and not must_be_requestable:
                keyed += [(-100 + i, self._system_qtype(q)) for i, q in enumerate(quals.SYSTEM_TYPES)]
            keyed += [(r["seq"], self._qtype(r)) for r in tx.all("SELECT * FROM qualification_types WHERE deleted_ms IS NULL ORDER BY seq")]
            if query:
                needle = query.lower()
                keyed = [(k, q) for k, q in keyed if needle in " ".join(filter(None, (q.name, q.description, q.keywords))).lower()]
            keyed = [(k, q) for k, q in keyed if k > after]
            more = len(keyed) > size
            keyed = keyed[:size]
            token = pagination.encode("ListQualificationTypes", filters, [keyed[-1][0]]) if more else None
            return Page([q for _, q in keyed], token)

    def associate_qualification(self, qtid: str, worker_id: str, *, integer_value: int | None = None,
                                send_notification: bool = True) -> Qualification:
        """Grant (or re-grant) a requester-owned qualification (model doc: "You can only
        assign a Qualification of a Qualification type that you created").

        IntegerValue defaults to 1 (GUESS, from the legacy AssignQualification default).
        An unknown worker gets the observed "not valid for the parameter WorkerId" error
        (aws/aws-sdk-java#2055). SendNotification is accepted and ignored offline.
        """
        if qtid in quals.SYSTEM_TYPES:
            raise E.RequestError(f"You do not own the QualificationType {qtid}; only your own types can be assigned.",
                                 "AWS.MechanicalTurk.QualificationTypeNotOwned")  # GUESS
        value = 1 if integer_value is None else integer_value
        with self.transaction() as tx:
            self._own_qtype_row(tx, qtid)
            self._require_worker(tx, worker_id)
            tx.run("INSERT INTO qualifications (qualification_type_id, worker_id, integer_value, status, grant_ms) "
                   "VALUES (?, ?, ?, 'Granted', ?) ON CONFLICT (qualification_type_id, worker_id) DO UPDATE SET "
                   "integer_value = excluded.integer_value, status = 'Granted', grant_ms = excluded.grant_ms",
                   qtid, worker_id, value, tx.now_ms)
            return Qualification(qtid, worker_id, value, "Granted", tx.now)

    def disassociate_qualification(self, qtid: str, worker_id: str, *, reason: str | None = None) -> None:
        """Revoke a granted qualification; it then lists under Status=Revoked. Revoking one
        the worker does not hold is an error (GUESS: code and wording)."""
        with self.transaction() as tx:
            self._own_qtype_row(tx, qtid)
            row = tx.one("SELECT status FROM qualifications WHERE qualification_type_id = ? AND worker_id = ?", qtid, worker_id)
            if row is None or row["status"] != "Granted":
                raise E.RequestError(f"Worker {worker_id} does not have the Qualification {qtid}.", E.QUALIFICATION_DOES_NOT_EXIST)
            tx.run("UPDATE qualifications SET status = 'Revoked' WHERE qualification_type_id = ? AND worker_id = ?", qtid, worker_id)

    def list_workers_with_qualification(self, qtid: str, *, status: str | None = None, max_results: int | None = None,
                                        next_token: str | None = None) -> Page[Qualification]:
        """Workers holding a type. GUESS: without Status, only Granted ones are listed."""
        wanted = status or "Granted"
        size = pagination.page_size(max_results)
        filters = {"QualificationTypeId": qtid, "Status": wanted}
        with self.transaction() as tx:
            self._own_qtype_row(tx, qtid)
            key = pagination.decode(next_token, "ListWorkersWithQualificationType", filters)
            rows = tx.all("SELECT * FROM qualifications WHERE qualification_type_id = ? AND status = ? AND seq > ? ORDER BY seq LIMIT ?",
                          qtid, wanted, key[0] if key else 0, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListWorkersWithQualificationType", filters, [rows[-1]["seq"]]) if more else None
            return Page([Qualification(r["qualification_type_id"], r["worker_id"], r["integer_value"], r["status"],
                                       from_ms(r["grant_ms"])) for r in rows], token)

    def get_qualification_score(self, qtid: str, worker_id: str) -> Qualification:
        """A worker's value for one of the requester's types.

        Observed answers clients match on (Dallinger's get_current_qualification_score):
        "does not exist" when the worker never had it, and "This operation can be called
        with a status of: Granted" once revoked. GUESS: system types are refused.
        """
        with self.transaction() as tx:
            self._own_qtype_row(tx, qtid)
            row = tx.one("SELECT * FROM qualifications WHERE qualification_type_id = ? AND worker_id = ?", qtid, worker_id)
            if row is None:
                raise E.RequestError(f"You requested a Qualification that does not exist: {qtid} for worker {worker_id}.",
                                     E.QUALIFICATION_DOES_NOT_EXIST)
            if row["status"] != "Granted":
                raise E.RequestError("This operation can be called with a status of: Granted", "AWS.MechanicalTurk.InvalidQualificationState")
            return Qualification(qtid, worker_id, row["integer_value"], row["status"], from_ms(row["grant_ms"]))

    def delete_qualification_type(self, qtid: str) -> None:
        """Dispose of a type and every grant of it. GUESS: immediate (MTurk does it
        asynchronously); HITs that require it keep the requirement, which nobody meets."""
        with self.transaction() as tx:
            self._own_qtype_row(tx, qtid)
            tx.run("UPDATE qualification_types SET deleted_ms = ? WHERE id = ?", tx.now_ms, qtid)
            tx.run("DELETE FROM qualifications WHERE qualification_type_id = ?", qtid)

    def list_hits_for_qualification_type(self, qtid: str, *, max_results: int | None = None,
                                         next_token: str | None = None) -> Page[Hit]:
        """Live HITs with a requirement on ``qtid`` (own or system type), oldest first."""
        size = pagination.page_size(max_results)
        filters = {"QualificationTypeId": qtid}
        with self.transaction() as tx:
            if qtid not in quals.SYSTEM_TYPES:
                self._own_qtype_row(tx, qtid)
            key = pagination.decode(next_token, "ListHITsForQualificationType", filters)
            pattern = f'%"QualificationTypeId": "{qtid}"%'
            rows = self._hit_rows(tx, "h.deleted_ms IS NULL AND h.seq > ? AND t.qualification_requirements LIKE ? ORDER BY h.seq LIMIT ?",
                                  key[0] if key else 0, pattern, size + 1)
            more = len(rows) > size
            rows = rows[:size]
            token = pagination.encode("ListHITsForQualificationType", filters, [rows[-1]["seq"]]) if more else None
            return Page(self._snapshots(tx, rows), token)

