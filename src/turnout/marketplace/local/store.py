"""The offline marketplace's store: one SQLite file, its schema, transactions, the
lazy time rules, and the helpers every operation shares (moto's ``models.py`` base).

Storage is one SQLite file, so a study rehearsal survives restarts and several server
processes (gunicorn workers) can share it. Every public method runs in its own
``BEGIN IMMEDIATE`` transaction (one writer at a time, WAL so readers are not blocked,
a busy timeout instead of "database is locked").

Time comes only from the injected clock. Rules that MTurk applies "after a while"
(assignment deadlines, auto-approval, disposal) are applied lazily: each transaction
first settles everything that became due up to ``clock.now()``, stamping each change
with the instant it logically happened, not the instant it was noticed. Advancing a
ManualClock by a week therefore has exactly the effect a week of waiting would have.

The requester operations build on this in ``state.py`` and ``requester_quals.py``; the
worker side in ``worker_side.py``. Every behavioural rule carries a comment naming its
source (the botocore model documentation, an observed MTurk answer), or ``GUESS`` when
no source confirmed it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import string
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import turnout.marketplace.local.errors as E
import turnout.marketplace.local.money as money
from turnout.clock import Clock, SystemClock
from turnout.events import marketplace_event

from .records import (
    ABANDONED,
    ACCEPTED,
    APPROVED,
    REJECTED,
    SUBMITTED,
    Assignment,
    Event,
    Hit,
    Worker,
)
from .schema import SCHEMA, TABLES

__all__ = ["FAULT_KINDS", "Store", "StoreUnusable", "Tx", "derive_hit_status", "from_ms", "new_id",
           "new_worker_id", "to_ms"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ID_ALPHABET = string.ascii_uppercase + string.digits

DEFAULT_MAX_ASSIGNMENTS = 1  # legacy MTurk docs: MaxAssignments defaults to 1
DEFAULT_AUTO_APPROVAL_DELAY = 2_592_000  # GUESS: 30 days; MTurk's current default is unverified
TOKEN_LIFETIME = timedelta(hours=24)  # MTurk: a UniqueRequestToken expires after 24 h
OVERRIDE_WINDOW = timedelta(days=30)  # MTurk: a reject can be reversed within 30 days of submission
AUTO_DISPOSE_AFTER = timedelta(days=120)  # model doc DeleteHIT; GUESS: counted from expiration
PREVIEW_WINDOW = timedelta(minutes=5)  # GUESS: how long a preview counts as pending
MIN_REWARD = Decimal("0.01")  # GUESS: MTurk refuses a $0.00 reward
FAULT_KINDS = ("service_fault", "throttle", "drop_response")
IDLE_CONNECTIONS = 8  # open SQLite connections a MarketplaceState keeps for reuse (see _acquire)



# Per-store secrets, made once when the store is created and kept in ``meta`` (reset keeps
# them): the Requester API's SigV4 key pair, the control API's secret, and the key that
# derives each assignment's externalSubmit proof. See docs/marketplace.md, "Security".
SECRET_KEYS = ("access_key_id", "secret_access_key", "control_secret", "submit_secret")


class StoreUnusable(Exception):
    """The store path cannot hold the marketplace (a directory, not SQLite, unreachable).

    ``path`` and ``reason`` are kept apart so a caller can name its own setting, e.g.
    ``[Marketplace] local_store``, in one line instead of a traceback.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot use {path} as the marketplace store: {reason}")
        self.path, self.reason = path, reason


def _new_secrets() -> dict[str, str]:
    # An AWS-shaped key pair (20-character ID, 40-character secret), so tools that check
    # the shape of AWS_ACCESS_KEY_ID accept it; the "LOCAL" infix tells it from a real key.
    return {
        "access_key_id": "AKLOCAL" + "".join(secrets.choice(ID_ALPHABET) for _ in range(13)),
        "secret_access_key": secrets.token_urlsafe(30),
        "control_secret": secrets.token_urlsafe(32),
        "submit_secret": secrets.token_urlsafe(32),
    }


def to_ms(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def new_id(length: int = 30, first: str = "3") -> str:
    """An MTurk-looking ID: 30 characters of ``[A-Z0-9]`` (as MTurk's HIT and assignment IDs)."""
    return first + "".join(secrets.choice(ID_ALPHABET) for _ in range(length - 1))


def new_worker_id() -> str:
    """Like ``A2YUCJ28XANFOX``: ``A`` then 13 characters (model pattern ``^A[A-Z0-9]+$``)."""
    return new_id(14, "A")


@dataclass
class Tx:
    """One open transaction: the connection and the instant it runs at."""

    con: sqlite3.Connection
    now: datetime
    now_ms: int

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.con.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.con.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        return self.con.execute(sql, args)


def derive_hit_status(
    *, max_assignments: int, accepted: int, submitted: int, approved: int, rejected: int,
    previewing: int, expired: bool, reviewing: bool,
) -> tuple[str, int, int, int]:
    """(HITStatus, pending, available, completed) from counters and time.

    HITStatus is derived from time and counters, never stored (as on MTurk). Sources:
    * Pending = being previewed, or accepted and not yet submitted/returned/abandoned
      (HIT data type docs).
    * Completed = approved + rejected (HIT data type docs); submitted-but-unreviewed
      work is in none of the three counters.
    * Assignable -> Unassignable (no slot free, but someone still working) -> Reviewable
      (expired or full, nobody working) (HIT status list). The exact
      transition conditions are a GUESS, as is "a preview takes a slot in the counters"
      (it never blocks another worker from accepting).
    """
    done = submitted + approved + rejected
    room = max(0, max_assignments - done)
    pending = min(accepted + (0 if expired else previewing), room)
    available = room - pending
    completed = approved + rejected
    if pending == 0 and (expired or available == 0):
        status = "Reviewing" if reviewing else "Reviewable"
    elif expired or available == 0:
        status = "Unassignable"
    else:
        status = "Assignable"
    return status, pending, available, completed


class Store:
    """The store and its shared rules; ``MarketplaceState`` adds the requester operations.

    Construct one per process; several instances may share ``path``.
    """


    def __init__(self, path: str | os.PathLike[str], clock: Clock | None = None, *, allow_http_external_url: bool = True) -> None:
        self.path = os.fspath(path)
        self.clock: Clock = clock or SystemClock()
        self.allow_http_external_url = allow_http_external_url
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._secrets: dict[str, str] = {}
        self._init_schema()

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: durable across process crashes (what rehearsals need), without an
        # fsync per call; only a power cut can lose the last transactions.
        con.execute("PRAGMA synchronous = NORMAL")
        return con

    def _acquire(self) -> sqlite3.Connection:
        """An idle connection of this process, or a new one; give it back with ``_release``.

        Why keep connections: closing the *last* connection to a WAL database checkpoints it
        and deletes the WAL, so a connection per call meant a checkpoint, an fsync of the
        database and a fresh WAL on every MTurk call (15-30 ms on an ext4 disk, nearly all
        of a call's time). With connections left open SQLite checkpoints only every 1000
        WAL pages, as designed. No lock (list.pop/append are atomic), so a fork cannot
        inherit a held one; connections inherited through fork are never used or closed
        by the child (SQLite's rule), only kept referenced.
        """
        if self._pid != os.getpid():
            self._inherited.extend(self._idle)
            self._idle = []
            self._pid = os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _release(self, con: sqlite3.Connection) -> None:
        if con.in_transaction or self._pid != os.getpid() or len(self._idle) >= IDLE_CONNECTIONS:
            con.close()
        else:
            self._idle.append(con)

    def close(self) -> None:
        """Close the idle connections (the state stays usable; later calls open new ones)."""
        while self._idle and self._pid == os.getpid():
            try:
                self._idle.pop().close()
            except IndexError:
                break

    def _init_schema(self) -> None:
        """Create the schema and the store's secrets; an unusable path raises StoreUnusable.

        Checked here, where every entry point opens the store, so a directory, a file that is
        not SQLite or an unreachable folder is one clear error instead of a sqlite3 traceback.
        """
        if os.path.isdir(self.path):
            raise StoreUnusable(self.path, "it is a directory, not an SQLite file")
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise StoreUnusable(self.path, f"its folder {parent} does not exist")
        new = not os.path.exists(self.path)
        try:
            con = self._acquire()
        except sqlite3.Error as exc:
            reason = "the file exists but is not an SQLite database" if "not a database" in str(exc) else f"cannot open it ({exc})"
            raise StoreUnusable(self.path, reason) from None
        if new:  # it will hold the local key pair: readable by its owner only (SQLite's -wal/-shm follow)
            with suppress(OSError):
                os.chmod(self.path, 0o600)
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('balance', ?)", (money.fmt(money.INITIAL_BALANCE),))
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
            for key, value in _new_secrets().items():
                con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            rows = con.execute(
                f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(SECRET_KEYS))})",  # noqa: S608
                SECRET_KEYS).fetchall()
            con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()
            reason = str(exc)
            if "not a database" in reason:
                reason = "the file exists but is not an SQLite database"
            raise StoreUnusable(self.path, reason) from None
        self._secrets = {row[0]: row[1] for row in rows}
        self._release(con)

    # ------------------------------------------------------------------ secrets

    @property
    def credentials(self) -> tuple[str, str]:
        """The (access key ID, secret access key) the Requester API accepts signatures from."""
        return self._secrets["access_key_id"], self._secrets["secret_access_key"]

    @property
    def control_secret(self) -> str:
        """The value of ``X-Turnout-Control-Secret`` that opens the control API from anywhere."""
        return self._secrets["control_secret"]

    def submit_key(self, assignment_id: str) -> str:
        """The proof ``externalSubmit`` wants for ``assignment_id`` (cookie ``turnout_submit_<id>``).

        Derived (HMAC of the store's submit secret), not stored: given only to whoever
        accepted the assignment (the worker site's browser, a simulated worker), so knowing
        an assignment ID is not enough to submit someone else's work.
        """
        key = self._secrets["submit_secret"].encode()
        return hmac.new(key, assignment_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:40]

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction at ``clock.now()``, with everything due settled first."""
        con = self._acquire()
        try:
            con.execute("BEGIN IMMEDIATE")
            now = self.clock.now()
            tx = Tx(con, now, to_ms(now))
            self._settle(tx)
            yield tx
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            self._release(con)


    def reset(self, *, balance: Decimal = money.INITIAL_BALANCE) -> None:
        """Forget everything (control API ``reset``): HITs, workers, money, faults."""
        with self.transaction() as tx:
            for table in TABLES:
                tx.run(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            tx.run("UPDATE meta SET value = ? WHERE key = 'balance'", money.fmt(balance))

    # ------------------------------------------------------------------ lazy time rules

    def _settle(self, tx: Tx) -> None:
        now = tx.now_ms
        # Assignment duration passed -> abandoned, slot returns (model doc,
        # AssignmentDurationInSeconds: "considered abandoned ... becomes available").
        for row in tx.all("SELECT id, hit_id, worker_id, deadline_ms FROM assignments WHERE status = ? AND deadline_ms <= ?", ACCEPTED, now):
            tx.run("UPDATE assignments SET status = ?, abandoned_ms = deadline_ms WHERE id = ?", ABANDONED, row["id"])
            self._event(tx, "AssignmentAbandoned", row["deadline_ms"], hit_id=row["hit_id"], assignment_id=row["id"], worker_id=row["worker_id"])
        # Auto-approval after AutoApprovalDelayInSeconds (model doc, CreateHIT). It pays like
        # ApproveAssignment. GUESS: if funds are short it waits for funds rather than failing.
        for row in tx.all("SELECT id FROM assignments WHERE status = ? AND auto_approval_ms <= ? ORDER BY auto_approval_ms, seq", SUBMITTED, now):
            arow = tx.one("SELECT * FROM assignments WHERE id = ?", row["id"])
            assert arow is not None
            try:
                self._approve_row(tx, arow, at_ms=arow["auto_approval_ms"], feedback=None)
            except E.RequestError:
                break
        # HITs are disposed of automatically after 120 days (model doc, DeleteHIT).
        cutoff = now - AUTO_DISPOSE_AFTER // timedelta(milliseconds=1)
        for row in tx.all(
            "SELECT id, hit_type_id, expiration_ms FROM hits WHERE deleted_ms IS NULL AND expiration_ms <= ? "
            "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.hit_id = hits.id AND a.status IN (?, ?))",
            cutoff, ACCEPTED, SUBMITTED,
        ):
            disposed_at = row["expiration_ms"] + AUTO_DISPOSE_AFTER // timedelta(milliseconds=1)
            tx.run("UPDATE hits SET deleted_ms = ? WHERE id = ?", disposed_at, row["id"])
            self._event(tx, "HITDisposed", disposed_at, hit_id=row["id"], hit_type_id=row["hit_type_id"])
        tx.run("DELETE FROM previews WHERE until_ms <= ?", now)
        tx.run("DELETE FROM request_tokens WHERE created_ms <= ?", now - TOKEN_LIFETIME // timedelta(milliseconds=1))

    # ------------------------------------------------------------------ shared helpers

    def _event(self, tx: Tx, event_type: str, at_ms: int, *, hit_id: str | None = None, hit_type_id: str | None = None,
               assignment_id: str | None = None, worker_id: str | None = None) -> None:
        if hit_type_id is None and hit_id is not None:
            row = tx.one("SELECT hit_type_id FROM hits WHERE id = ?", hit_id)
            hit_type_id = row["hit_type_id"] if row else None
        tx.run("INSERT INTO events (ms, event_type, hit_id, hit_type_id, assignment_id, worker_id) VALUES (?, ?, ?, ?, ?, ?)",
               at_ms, event_type, hit_id, hit_type_id, assignment_id, worker_id)
        marketplace_event(event_type, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id)

    def _balance(self, tx: Tx) -> Decimal:
        row = tx.one("SELECT value FROM meta WHERE key = 'balance'")
        assert row is not None
        return Decimal(row["value"])

    def _debit(self, tx: Tx, kind: str, amount: Decimal, fee: Decimal, at_ms: int, *, assignment_id: str, hit_id: str, worker_id: str) -> None:
        # ApproveAssignment / SendBonus fail when funds do not cover payment plus fees
        # (model doc, ApproveAssignment and SendBonus).
        after = self._balance(tx) - amount - fee
        if after < 0:
            raise E.insufficient_funds()
        tx.run("UPDATE meta SET value = ? WHERE key = 'balance'", money.fmt(after))
        tx.run("INSERT INTO ledger (ms, kind, amount, fee, balance_after, assignment_id, hit_id, worker_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               at_ms, kind, money.fmt(amount), money.fmt(fee), money.fmt(after), assignment_id, hit_id, worker_id)

    def _hit_rows(self, tx: Tx, where: str, *args: Any) -> list[sqlite3.Row]:
        return tx.all(
            "SELECT h.*, t.group_id, t.title, t.description, t.keywords, t.reward, t.assignment_duration, "
            "t.auto_approval_delay, t.qualification_requirements FROM hits h JOIN hit_types t ON t.id = h.hit_type_id "
            f"WHERE {where}",  # noqa: S608 - callers pass fixed SQL fragments, values as args
            *args,
        )

    def _snapshots(self, tx: Tx, rows: Sequence[sqlite3.Row]) -> list[Hit]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        counts: dict[str, dict[str, int]] = {i: {} for i in ids}
        for c in tx.all(f"SELECT hit_id, status, COUNT(*) AS n FROM assignments WHERE hit_id IN ({marks}) GROUP BY hit_id, status", *ids):  # noqa: S608
            counts[c["hit_id"]][c["status"]] = c["n"]
        previews: dict[str, int] = {}
        for p in tx.all(
            f"SELECT p.hit_id, COUNT(*) AS n FROM previews p WHERE p.hit_id IN ({marks}) AND p.until_ms > ? "  # noqa: S608
            "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.hit_id = p.hit_id AND a.worker_id = p.worker_id "
            "AND a.status IN ('Accepted', 'Submitted', 'Approved', 'Rejected')) GROUP BY p.hit_id",
            *ids, tx.now_ms,
        ):
            previews[p["hit_id"]] = p["n"]
        return [self._snapshot(tx, r, counts[r["id"]], previews.get(r["id"], 0)) for r in rows]

    def _snapshot(self, tx: Tx, r: sqlite3.Row, counts: Mapping[str, int], previewing: int) -> Hit:
        status, pending, available, completed = derive_hit_status(
            max_assignments=r["max_assignments"], accepted=counts.get(ACCEPTED, 0),
            submitted=counts.get(SUBMITTED, 0), approved=counts.get(APPROVED, 0),
            rejected=counts.get(REJECTED, 0), previewing=previewing,
            expired=tx.now_ms >= r["expiration_ms"], reviewing=bool(r["reviewing"]),
        )
        return Hit(
            hit_id=r["id"], hit_type_id=r["hit_type_id"], hit_group_id=r["group_id"],
            creation_time=from_ms(r["created_ms"]), title=r["title"], description=r["description"],
            keywords=r["keywords"], reward=Decimal(r["reward"]), max_assignments=r["max_assignments"],
            auto_approval_delay=r["auto_approval_delay"], assignment_duration=r["assignment_duration"],
            expiration=from_ms(r["expiration_ms"]), status=status, review_status=r["review_status"],
            pending=pending, available=available, completed=completed, submitted=counts.get(SUBMITTED, 0),
            question=r["question"], hit_layout_id=r["hit_layout_id"], requester_annotation=r["requester_annotation"],
            qualification_requirements=json.loads(r["qualification_requirements"]),
            external_url=r["external_url"], masters_required=bool(r["masters"]),
        )

    def _live_hit(self, tx: Tx, hit_id: str) -> Hit:
        """A HIT that has not been deleted, or HITDoesNotExist.

        Deleted and auto-disposed HITs answer "does not exist" (observed for an old,
        auto-disposed HIT: aws/aws-cli#6116; GUESS that DeleteHIT behaves the same).
        """
        rows = self._hit_rows(tx, "h.id = ? AND h.deleted_ms IS NULL", hit_id)
        if not rows:
            raise E.hit_not_found(hit_id)
        return self._snapshots(tx, rows)[0]

    @staticmethod
    def _assignment(row: sqlite3.Row) -> Assignment:
        def t(col: str) -> datetime | None:
            return from_ms(row[col]) if row[col] is not None else None

        return Assignment(
            assignment_id=row["id"], hit_id=row["hit_id"], worker_id=row["worker_id"], status=row["status"],
            accept_time=from_ms(row["accept_ms"]), deadline=from_ms(row["deadline_ms"]),
            submit_time=t("submit_ms"), auto_approval_time=t("auto_approval_ms"), approval_time=t("approval_ms"),
            rejection_time=t("rejection_ms"), returned_time=t("returned_ms"), abandoned_time=t("abandoned_ms"),
            answer=row["answer"], requester_feedback=row["requester_feedback"],
        )

    @staticmethod
    def _worker(row: sqlite3.Row) -> Worker:
        return Worker(
            worker_id=row["id"], percent_approved=row["percent_approved"], number_approved=row["number_approved"],
            country=row["country"], subdivision=row["subdivision"], masters=bool(row["masters"]), adult=bool(row["adult"]),
        )

    def _custom_quals(self, tx: Tx, worker_id: str) -> dict[str, int | None]:
        rows = tx.all(
            "SELECT q.qualification_type_id, q.integer_value FROM qualifications q JOIN qualification_types t "
            "ON t.id = q.qualification_type_id WHERE q.worker_id = ? AND q.status = 'Granted' AND t.deleted_ms IS NULL",
            worker_id,
        )
        return {r["qualification_type_id"]: r["integer_value"] for r in rows}


    def _approve_row(self, tx: Tx, row: sqlite3.Row, *, at_ms: int, feedback: str | None) -> None:
        hit = tx.one("SELECT h.max_assignments, h.masters, t.reward FROM hits h JOIN hit_types t ON t.id = h.hit_type_id WHERE h.id = ?", row["hit_id"])
        assert hit is not None
        reward, fee = money.reward_cost(Decimal(hit["reward"]), hit["max_assignments"], bool(hit["masters"]))
        self._debit(tx, "reward", reward, fee, at_ms, assignment_id=row["id"], hit_id=row["hit_id"], worker_id=row["worker_id"])
        tx.run("UPDATE assignments SET status = ?, approval_ms = ?, requester_feedback = COALESCE(?, requester_feedback) WHERE id = ?",
               APPROVED, at_ms, feedback, row["id"])
        self._event(tx, "AssignmentApproved", at_ms, hit_id=row["hit_id"], assignment_id=row["id"], worker_id=row["worker_id"])


    @staticmethod
    def _blocked(tx: Tx, worker_id: str) -> bool:
        return tx.one("SELECT 1 FROM worker_blocks WHERE worker_id = ?", worker_id) is not None

    def _require_worker(self, tx: Tx, worker_id: str) -> Worker:
        row = tx.one("SELECT * FROM workers WHERE id = ?", worker_id)
        if row is None:
            raise E.ParameterValidationError(f'The value "{worker_id}" is not valid for the parameter WorkerId.')
        return self._worker(row)


    # ------------------------------------------------------------------ inspection

    def events(self, *, after: int = 0, limit: int = 1000) -> list[Event]:
        """Notification-style events (AssignmentAccepted, ...) with seq > ``after``.

        Accept, return and abandon are visible through the Requester API only as
        notifications; this log is the offline stand-in for them.
        """
        with self.transaction() as tx:
            return [Event(r["seq"], from_ms(r["ms"]), r["event_type"], r["hit_id"], r["hit_type_id"], r["assignment_id"], r["worker_id"])
                    for r in tx.all("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)]

    def assignments_for_hit(self, hit_id: str) -> list[Assignment]:
        """Every assignment of a HIT in any status, including accepted/returned/abandoned
        ones the Requester API hides (for dashboards and tests)."""
        with self.transaction() as tx:
            return [self._assignment(r) for r in tx.all("SELECT * FROM assignments WHERE hit_id = ? ORDER BY seq", hit_id)]

    def summary(self) -> dict[str, Any]:
        """Counts for the control API's /state page."""
        with self.transaction() as tx:
            def count(sql: str) -> int:
                row = tx.one(sql)
                return int(row[0]) if row else 0

            by_status = {r["status"]: r["n"] for r in tx.all("SELECT status, COUNT(*) AS n FROM assignments GROUP BY status")}
            return {
                "now": tx.now.isoformat(),
                "balance": money.fmt(self._balance(tx)),
                "hits": count("SELECT COUNT(*) FROM hits WHERE deleted_ms IS NULL"),
                "deleted_hits": count("SELECT COUNT(*) FROM hits WHERE deleted_ms IS NOT NULL"),
                "workers": count("SELECT COUNT(*) FROM workers"),
                "assignments": by_status,
                "bonuses": count("SELECT COUNT(*) FROM bonuses"),
                "faults": count("SELECT COUNT(*) FROM faults WHERE remaining > 0"),
            }

    # ------------------------------------------------------------------ fault injection

    def add_fault(self, operation: str, kind: str, count: int = 1) -> None:
        """Make the next ``count`` calls of ``operation`` ('*' for any) fail.

        kinds: ``service_fault`` (500 ServiceFault, nothing changes), ``throttle`` (400
        ThrottlingException, nothing changes), ``drop_response`` (the change is committed,
        then the caller gets a 500: a crash between MTurk's success and the caller's
        bookkeeping).
        """
        from .validation import service_model

        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; valid kinds: {', '.join(FAULT_KINDS)}")
        if operation != "*" and operation not in service_model().operation_names:
            raise ValueError(f"unknown MTurk operation {operation!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.transaction() as tx:
            tx.run("INSERT INTO faults (operation, kind, remaining) VALUES (?, ?, ?)", operation, kind, count)

    def take_fault(self, operation: str) -> str | None:
        """Consume one pending fault for ``operation`` and return its kind (oldest first)."""
        con = self._acquire()
        try:  # cheap unlocked look first: almost every call has no fault waiting
            if con.execute("SELECT 1 FROM faults WHERE remaining > 0 LIMIT 1").fetchone() is None:
                return None
        finally:
            self._release(con)
        with self.transaction() as tx:
            row = tx.one("SELECT seq, kind FROM faults WHERE remaining > 0 AND operation IN (?, '*') ORDER BY seq LIMIT 1", operation)
            if row is None:
                return None
            tx.run("UPDATE faults SET remaining = remaining - 1 WHERE seq = ?", row["seq"])
            tx.run("DELETE FROM faults WHERE remaining <= 0")
            return str(row["kind"])

    def pending_faults(self) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return [{"operation": r["operation"], "kind": r["kind"], "remaining": r["remaining"]}
                    for r in tx.all("SELECT * FROM faults WHERE remaining > 0 ORDER BY seq")]

    def clear_faults(self) -> None:
        with self.transaction() as tx:
            tx.run("DELETE FROM faults")
