"""All state and rules of the offline marketplace, with no HTTP in sight (moto's
``models.py``, split: worker-side rules live in ``workers.py``).

Storage is one SQLite file, so a study rehearsal survives restarts and several server
processes (gunicorn workers) can share it. Every public method runs in its own
``BEGIN IMMEDIATE`` transaction (one writer at a time, WAL so readers are not blocked,
a busy timeout instead of "database is locked").

Time comes only from the injected clock. Rules that MTurk applies "after a while"
(assignment deadlines, auto-approval, disposal) are applied lazily: each transaction
first settles everything that became due up to ``clock.now()``, stamping each change
with the instant it logically happened, not the instant it was noticed. Advancing a
ManualClock by a week therefore has exactly the effect a week of waiting would have.

Every behavioural rule carries a comment naming its source in MTURK_FACTS.md / the
botocore model documentation, or ``GUESS`` when no source confirmed it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import string
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from turnout.clock import Clock, SystemClock
from turnout.events import marketplace_event

from . import errors as E
from . import money, pagination, quals
from .records import (
    ABANDONED,
    ACCEPTED,
    APPROVED,
    REJECTED,
    REVIEWABLE_STATUSES,
    SUBMITTED,
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

if TYPE_CHECKING:
    from .worker_side import WorkerSide

__all__ = ["FAULT_KINDS", "MarketplaceState", "StoreUnusable", "new_id"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ID_ALPHABET = string.ascii_uppercase + string.digits

DEFAULT_MAX_ASSIGNMENTS = 1  # MTURK_FACTS: "MaxAssignments default 1 (legacy docs, snippet seen)"
DEFAULT_AUTO_APPROVAL_DELAY = 2_592_000  # GUESS: 30 days; MTURK_FACTS marks the default unverified
TOKEN_LIFETIME = timedelta(hours=24)  # MTURK_FACTS "Idempotency": tokens expire after 24 h
OVERRIDE_WINDOW = timedelta(days=30)  # MTURK_FACTS "Reversing a reject": within 30 days of submission
AUTO_DISPOSE_AFTER = timedelta(days=120)  # model doc DeleteHIT; GUESS: counted from expiration
PREVIEW_WINDOW = timedelta(minutes=5)  # GUESS: how long a preview counts as pending
MIN_REWARD = Decimal("0.01")  # GUESS: MTurk refuses a $0.00 reward
FAULT_KINDS = ("service_fault", "throttle", "drop_response")
IDLE_CONNECTIONS = 8  # open SQLite connections a MarketplaceState keeps for reuse (see _acquire)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hit_types (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, description TEXT NOT NULL, keywords TEXT, reward TEXT NOT NULL,
    assignment_duration INTEGER NOT NULL, auto_approval_delay INTEGER NOT NULL,
    qualification_requirements TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    hit_type_id TEXT NOT NULL REFERENCES hit_types(id),
    question TEXT, external_url TEXT, hit_layout_id TEXT, requester_annotation TEXT,
    max_assignments INTEGER NOT NULL, masters INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, expiration_ms INTEGER NOT NULL,
    review_status TEXT NOT NULL DEFAULT 'NotReviewed', reviewing INTEGER NOT NULL DEFAULT 0,
    deleted_ms INTEGER);
CREATE INDEX IF NOT EXISTS hits_type ON hits(hit_type_id);
CREATE INDEX IF NOT EXISTS hits_live_expiry ON hits(expiration_ms) WHERE deleted_ms IS NULL;
CREATE TABLE IF NOT EXISTS assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    hit_id TEXT NOT NULL REFERENCES hits(id), worker_id TEXT NOT NULL, status TEXT NOT NULL,
    accept_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, submit_ms INTEGER,
    auto_approval_ms INTEGER, approval_ms INTEGER, rejection_ms INTEGER,
    returned_ms INTEGER, abandoned_ms INTEGER, answer TEXT, requester_feedback TEXT);
CREATE INDEX IF NOT EXISTS assignments_hit ON assignments(hit_id, status);
CREATE INDEX IF NOT EXISTS assignments_due ON assignments(status, deadline_ms);
CREATE INDEX IF NOT EXISTS assignments_auto ON assignments(status, auto_approval_ms);
CREATE INDEX IF NOT EXISTS assignments_worker ON assignments(worker_id);
CREATE TABLE IF NOT EXISTS previews (
    hit_id TEXT NOT NULL, worker_id TEXT NOT NULL, until_ms INTEGER NOT NULL,
    PRIMARY KEY (hit_id, worker_id));
CREATE TABLE IF NOT EXISTS bonuses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL, assignment_id TEXT NOT NULL,
    hit_id TEXT NOT NULL, amount TEXT NOT NULL, fee TEXT NOT NULL, reason TEXT NOT NULL,
    grant_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bonuses_hit ON bonuses(hit_id);
CREATE INDEX IF NOT EXISTS bonuses_assignment ON bonuses(assignment_id);
CREATE TABLE IF NOT EXISTS request_tokens (
    scope TEXT NOT NULL, token TEXT NOT NULL, created_ms INTEGER NOT NULL,
    result TEXT, request_id TEXT, PRIMARY KEY (scope, token));
CREATE TABLE IF NOT EXISTS qualification_types (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    description TEXT NOT NULL, keywords TEXT, status TEXT NOT NULL, retry_delay INTEGER,
    test TEXT, answer_key TEXT, test_duration INTEGER, auto_granted INTEGER NOT NULL DEFAULT 0,
    auto_granted_value INTEGER, created_ms INTEGER NOT NULL, deleted_ms INTEGER);
CREATE TABLE IF NOT EXISTS qualifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, qualification_type_id TEXT NOT NULL,
    worker_id TEXT NOT NULL, integer_value INTEGER, status TEXT NOT NULL,
    grant_ms INTEGER NOT NULL, UNIQUE (qualification_type_id, worker_id));
CREATE INDEX IF NOT EXISTS qualifications_worker ON qualifications(worker_id);
CREATE TABLE IF NOT EXISTS workers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    percent_approved INTEGER NOT NULL, number_approved INTEGER NOT NULL,
    country TEXT NOT NULL, subdivision TEXT, masters INTEGER NOT NULL, adult INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, kind TEXT NOT NULL,
    amount TEXT NOT NULL, fee TEXT NOT NULL, balance_after TEXT NOT NULL,
    assignment_id TEXT, hit_id TEXT, worker_id TEXT);
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, operation TEXT NOT NULL, kind TEXT NOT NULL,
    remaining INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, event_type TEXT NOT NULL,
    hit_id TEXT, hit_type_id TEXT, assignment_id TEXT, worker_id TEXT);
CREATE TABLE IF NOT EXISTS worker_blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL UNIQUE, reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, worker_id TEXT NOT NULL,
    subject TEXT NOT NULL, message TEXT NOT NULL);
"""
# Children before parents, so reset() satisfies the foreign keys.
_TABLES = ("assignments", "previews", "bonuses", "hits", "hit_types", "request_tokens",
           "qualification_types", "qualifications", "workers", "ledger", "faults", "events",
           "notifications", "worker_blocks")


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
    """An MTurk-looking ID: 30 characters of ``[A-Z0-9]`` (MTURK_FACTS, fidelity details)."""
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


def _not_found_hit(hit_id: str) -> E.RequestError:
    # Observed wording and code: aws/aws-cli#6116, NRGI/resourcecontracts.org#1384.
    return E.RequestError(f"Hit {hit_id} does not exist.", E.HIT_DOES_NOT_EXIST)


def _not_found_assignment(assignment_id: str) -> E.RequestError:
    # Observed wording: cloudyr/MTurkR#18, facebookresearch/Mephisto#1081.
    return E.RequestError(f"Assignment {assignment_id} does not exist.", E.ASSIGNMENT_DOES_NOT_EXIST)


def _wrong_state(allowed: str) -> E.RequestError:
    # Observed: "This operation can be called with a status of: Submitted" (NRGI#1384).
    return E.RequestError(f"This operation can be called with a status of: {allowed}", E.INVALID_ASSIGNMENT_STATE)


def _insufficient_funds() -> E.RequestError:
    # Observed wording and code: NRGI/resourcecontracts.org#538.
    return E.RequestError(
        "This Requester has insufficient funds in their account to complete this transaction.",
        E.INSUFFICIENT_FUNDS,
    )


def derive_hit_status(
    *, max_assignments: int, accepted: int, submitted: int, approved: int, rejected: int,
    previewing: int, expired: bool, reviewing: bool,
) -> tuple[str, int, int, int]:
    """(HITStatus, pending, available, completed) from counters and time.

    HITStatus is derived, never stored (MTURK_FACTS, fidelity details). Sources:
    * Pending = being previewed, or accepted and not yet submitted/returned/abandoned
      (HIT data type docs, MTURK_FACTS "Pending semantics").
    * Completed = approved + rejected (MTURK_FACTS, HIT fields); submitted-but-unreviewed
      work is in none of the three counters.
    * Assignable -> Unassignable (no slot free, but someone still working) -> Reviewable
      (expired or full, nobody working) (HIT status list, MTURK_FACTS). The exact
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


def parse_question(question: str, *, allow_http: bool) -> str | None:
    """Check a Question document; return its ExternalURL when it is an ExternalQuestion.

    model doc: must be a QuestionForm, ExternalQuestion or HTMLQuestion document.
    MTURK_FACTS: ExternalURL must be HTTPS. The error wordings are GUESS.
    """
    try:
        root = ET.fromstring(question)
    except ET.ParseError as exc:
        raise E.RequestError(
            f"There was an error parsing the XML question or answer data in your request. Details: {exc}",
            E.XML_PARSE_ERROR,
        ) from exc
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("ExternalQuestion", "HTMLQuestion", "QuestionForm"):
        raise E.RequestError(
            f"There was an error parsing the XML question or answer data in your request: "
            f"the root element {kind} is not QuestionForm, ExternalQuestion or HTMLQuestion.",
            E.XML_PARSE_ERROR,
        )
    if kind != "ExternalQuestion":
        return None
    url_el = next((el for el in root if el.tag.rsplit("}", 1)[-1] == "ExternalURL"), None)
    url = (url_el.text or "").strip() if url_el is not None else ""
    parts = urlsplit(url)
    ok = parts.scheme == "https" and bool(parts.hostname)
    if not ok and allow_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        ok = True
    if not ok:
        hint = " (http is allowed only for 127.0.0.1/localhost, and only when allow_http_external_url is on)"
        raise E.ParameterValidationError(
            f'The value "{url}" is not valid for the parameter ExternalURL: it must be an https URL.{hint}'
        )
    return url


class MarketplaceState:
    """The offline MTurk: requester-side operations plus inspection helpers.

    ``state.workers`` gives the worker side (accept, submit, ...). Construct one per
    process; several instances may share ``path``.
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

    @property
    def workers(self) -> WorkerSide:
        from .worker_side import WorkerSide

        return WorkerSide(self)

    def reset(self, *, balance: Decimal = money.INITIAL_BALANCE) -> None:
        """Forget everything (control API ``reset``): HITs, workers, money, faults."""
        with self.transaction() as tx:
            for table in _TABLES:
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
            raise _insufficient_funds()
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
            raise _not_found_hit(hit_id)
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

    def _check_token(self, tx: Tx, scope: str, token: str | None) -> None:
        """Refuse a UniqueRequestToken seen in the last 24 h (MTURK_FACTS "Idempotency")."""
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
            raise _insufficient_funds()
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

        A time in the past (or 0) expires the HIT now (model doc, MTURK_FACTS "Expire").
        A later time extends it, also re-opening an expired HIT (HITExtended event). An
        earlier time that is still in the future is refused: MTURK_FACTS says expiry
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

        model doc / MTURK_FACTS "Delete": only a Reviewable HIT whose submitted assignments
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
            # model doc: fewer than 10 -> 10 or more is refused (MTURK_FACTS "9-cap trap").
            if hit.max_assignments < money.LARGE_HIT_THRESHOLD <= new_total:
                raise E.RequestError(
                    "HITs created with fewer than 10 assignments cannot be extended to have 10 or more assignments.",
                    E.INVALID_MAX_ASSIGNMENTS_INCREASE,
                )
            reward, fee = money.reward_cost(hit.reward, new_total, hit.masters_required)
            if (reward + fee) * count > self._balance(tx):  # GUESS, as for CreateHIT
                raise _insufficient_funds()
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
            raise _not_found_assignment(assignment_id)
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
        """A reviewable assignment and its HIT (MTURK_FACTS: only Submitted/Approved/Rejected
        assignments of non-disposed HITs). Before submission the observed answer is
        "This operation can be called with a status of: Reviewable,Approved,Rejected"
        (facebookresearch/ParlAI code, TurkServer#56)."""
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            hit_rows = self._hit_rows(tx, "h.id = ? AND h.deleted_ms IS NULL", row["hit_id"])
            if not hit_rows:
                raise _not_found_assignment(assignment_id)  # GUESS for assignments of deleted HITs
            if row["status"] not in REVIEWABLE_STATUSES:
                raise _wrong_state("Reviewable,Approved,Rejected")
            return self._assignment(row), self._snapshots(tx, hit_rows)[0]

    def _approve_row(self, tx: Tx, row: sqlite3.Row, *, at_ms: int, feedback: str | None) -> None:
        hit = tx.one("SELECT h.max_assignments, h.masters, t.reward FROM hits h JOIN hit_types t ON t.id = h.hit_type_id WHERE h.id = ?", row["hit_id"])
        assert hit is not None
        reward, fee = money.reward_cost(Decimal(hit["reward"]), hit["max_assignments"], bool(hit["masters"]))
        self._debit(tx, "reward", reward, fee, at_ms, assignment_id=row["id"], hit_id=row["hit_id"], worker_id=row["worker_id"])
        tx.run("UPDATE assignments SET status = ?, approval_ms = ?, requester_feedback = COALESCE(?, requester_feedback) WHERE id = ?",
               APPROVED, at_ms, feedback, row["id"])
        self._event(tx, "AssignmentApproved", at_ms, hit_id=row["hit_id"], assignment_id=row["id"], worker_id=row["worker_id"])

    def approve_assignment(self, assignment_id: str, *, requester_feedback: str | None = None, override_rejection: bool = False) -> None:
        """Approve and pay reward plus fees (model doc, ApproveAssignment).

        Approving twice fails with "...status of: Submitted" (MTURK_FACTS, observed in
        client code), despite the model's idempotent trait. OverrideRejection approves a
        Rejected assignment submitted within 30 days whose HIT is not deleted (model doc).
        """
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            status = row["status"]
            if status == REJECTED and override_rejection:
                hit_alive = tx.one("SELECT 1 FROM hits WHERE id = ? AND deleted_ms IS NULL", row["hit_id"]) is not None
                if not hit_alive:
                    raise _not_found_hit(row["hit_id"])  # GUESS: code for "HIT deleted"
                if tx.now_ms - row["submit_ms"] > OVERRIDE_WINDOW // timedelta(milliseconds=1):
                    raise E.RequestError(
                        "A rejected assignment can be approved only within 30 days of its submission.",  # GUESS wording
                        E.OVERRIDE_WINDOW_PASSED,
                    )
            elif status != SUBMITTED:
                raise _wrong_state("Submitted")
            self._approve_row(tx, row, at_ms=tx.now_ms, feedback=requester_feedback)

    def reject_assignment(self, assignment_id: str, *, requester_feedback: str) -> None:
        """Reject a Submitted assignment (observed error for anything else: NRGI#1384)."""
        with self.transaction() as tx:
            row = self._assignment_row(tx, assignment_id)
            if row["status"] != SUBMITTED:
                raise _wrong_state("Submitted")
            tx.run("UPDATE assignments SET status = ?, rejection_ms = ?, requester_feedback = ? WHERE id = ?",
                   REJECTED, tx.now_ms, requester_feedback, assignment_id)
            self._event(tx, "AssignmentRejected", tx.now_ms, hit_id=row["hit_id"], assignment_id=assignment_id, worker_id=row["worker_id"])

    # ------------------------------------------------------------------ money

    def send_bonus(self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str,
                   unique_request_token: str | None = None, request_id: str | None = None) -> BonusPayment:
        """Pay a bonus plus the 20% fee (model doc, SendBonus; MTURK_FACTS "Commission").

        Rules: only for submitted/approved/rejected work; an in-flight assignment "does not
        exist" (observed, facebookresearch/Mephisto#1081). Only the worker who did the
        assignment can be paid (MTURK_FACTS "Bonus constraints"; error wording GUESS).
        GUESS: bonuses on a rejected assignment, or one of a deleted HIT, are allowed.
        """
        with self.transaction() as tx:
            self._check_token(tx, "Bonus", unique_request_token)
            row = self._assignment_row(tx, assignment_id)
            if row["status"] not in REVIEWABLE_STATUSES:
                raise _not_found_assignment(assignment_id)
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
                raise _not_found_hit(hit_id)  # GUESS: unknown HIT is an error, not an empty list
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
        """Available balance. Starts at 10000.00 like the sandbox (MTURK_FACTS "Sandbox"),
        but is debited by approvals and bonuses."""
        with self.transaction() as tx:
            return self._balance(tx)

    def transactions(self) -> list[Transaction]:
        with self.transaction() as tx:
            return [Transaction(r["seq"], from_ms(r["ms"]), r["kind"], Decimal(r["amount"]), Decimal(r["fee"]),
                                Decimal(r["balance_after"]), r["assignment_id"], r["hit_id"], r["worker_id"])
                    for r in tx.all("SELECT * FROM ledger ORDER BY seq")]

    # ------------------------------------------------------------------ qualifications

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
        real search is a full-text one and eventually consistent, MTURK_FACTS)."""
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

    @staticmethod
    def _blocked(tx: Tx, worker_id: str) -> bool:
        return tx.one("SELECT 1 FROM worker_blocks WHERE worker_id = ?", worker_id) is not None

    def _require_worker(self, tx: Tx, worker_id: str) -> Worker:
        row = tx.one("SELECT * FROM workers WHERE id = ?", worker_id)
        if row is None:
            raise E.ParameterValidationError(f'The value "{worker_id}" is not valid for the parameter WorkerId.')
        return self._worker(row)

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

    # ------------------------------------------------------------------ inspection

    def events(self, *, after: int = 0, limit: int = 1000) -> list[Event]:
        """Notification-style events (AssignmentAccepted, ...) with seq > ``after``.

        Accept, return and abandon are visible through the Requester API only as
        notifications (MTURK_FACTS); this log is the offline stand-in for them.
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
