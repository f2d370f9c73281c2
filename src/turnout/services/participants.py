"""Participant lifecycle: the rules behind every route psiturk.js calls.

Routes parse the request and call one function here; these functions decide. psiTurk's
contract (status codes, error numbers, JSON shapes) is kept; its bugs are not: finished
participants are never demoted, a stale save cannot replace newer data, concurrent first
visits make one row, and writes need the participant's token.
"""

from __future__ import annotations

import enum
import hmac
import random
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from turnout import events
from turnout.clock import Clock
from turnout.config import Settings
from turnout.datastring import count_trials, parse_sync_body
from turnout.datastring import parse as parse_stored
from turnout.db.engine import Database, DriverStatement
from turnout.db.locks import locked_session
from turnout.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from turnout.experiment import counterbalance
from turnout.experiment.errors import ExperimentError
from turnout.experiment.status import COMPLETED_STATUSES, Outcome, Status, record_insert, transition
from turnout.project import Project


@dataclass
class ExperimentContext:
    """What the participant services need, passed in explicitly (no globals)."""

    db: Database
    settings: Settings
    clock: Clock
    project: Project
    rng: random.Random = field(default_factory=random.SystemRandom)

    @property
    def Participant(self) -> Any:  # noqa: N802 - a model class
        return self.db.models.Participant


@dataclass(frozen=True)
class RequestInfo:
    ipaddress: str
    browser: str
    platform: str
    language: str


def is_debug_id(value: str | None) -> bool:
    return bool(value) and str(value).startswith("debug")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_matches(stored: str | None, offered: Iterable[str | None], *, required: bool) -> bool:
    """A participant's write is allowed if any offered token matches the stored one.

    Rows made by psiTurk before the upgrade have no token; they stay writable so that a
    study in progress survives the switch to turnout.
    """
    if not required or stored is None:
        return True
    return any(t and hmac.compare_digest(t.encode(), stored.encode()) for t in offered)


def _require_token(ctx: ExperimentContext, participant: Any, offered: Iterable[str | None]) -> None:
    if not token_matches(participant.token, offered, required=ctx.settings.participant_tokens):
        raise Forbidden("this request does not carry the participant token issued with the experiment "
                        "page; reload the experiment page (psiturk.js sends the token automatically)")


def get(session: Session, ctx: ExperimentContext, uniqueid: str) -> Any | None:
    return session.get(ctx.Participant, uniqueid)


# --- /ad -----------------------------------------------------------------------------


class AdPage(enum.Enum):
    AD = "ad"
    THANKS = "thanks"  # already completed: show the submit-to-MTurk page again
    DEBUG_DONE = "debug_done"  # a finished debug run: never the MTurk submit form


def is_debug_row(participant: Any) -> bool:
    """Whether a stored participant is a debug run: decided by what is stored, never by the
    request, so a request's ``debug...`` hitId or mode cannot change how a real row is treated."""
    return is_debug_id(participant.hitid) or participant.mode == "debug"


def stored_mode(ctx: ExperimentContext, *, worker_id: str | None, assignment_id: str) -> str | None:
    """The mode stored with this worker's participation, if there is one: the thanks page
    must submit to the marketplace the participant was recruited on, whatever the link says."""
    if not worker_id:
        return None
    P = ctx.Participant
    with ctx.db.begin() as session:
        return session.scalar(select(P.mode).where(P.uniqueid == f"{worker_id}:{assignment_id}"))


def ad_decision(ctx: ExperimentContext, *, hit_id: str, assignment_id: str, worker_id: str | None) -> AdPage:
    """psiTurk's /ad decision table, minus its 1000 dead end for paid participants.

    The participant's own row (``worker:assignment``) decides, with its stored hitId: a
    request's ``debug...`` hitId does not make a real participant's row a debug one.
    """
    P = ctx.Participant
    debug = is_debug_id(hit_id)
    with ctx.db.begin() as session:
        already_in_db = False
        status = None
        if worker_id:
            already_in_db = session.scalar(
                select(P.uniqueid).where(P.workerid == worker_id, P.assignmentid != assignment_id).limit(1)
            ) is not None
            mine = session.get(P, f"{worker_id}:{assignment_id}")
            if mine is not None:
                status, debug = mine.status, is_debug_row(mine)
    if status in (Status.STARTED, Status.QUITEARLY) and not debug:
        raise ExperimentError("already_started_exp_mturk")
    if status in COMPLETED_STATUSES:
        return AdPage.DEBUG_DONE if debug else AdPage.THANKS
    if already_in_db and not (debug or ctx.settings.allow_repeats):
        raise ExperimentError("already_did_exp_hit")
    if status in (None, Status.NOT_ACCEPTED, Status.ALLOCATED) or debug:
        return AdPage.AD
    raise ExperimentError("status_incorrectly_set")


# --- /exp ----------------------------------------------------------------------------


def _custom_condition(ctx: ExperimentContext, mode: str) -> tuple[int, int] | None:
    """The project's ``custom_get_condition(mode)``, if it has one.

    Called before turnout takes its counterbalancing lock, as psiTurk called it without
    one. Project code works in psiTurk's ``db_session``; its transaction is committed here
    (psiTurk's /exp committed that same session), because on SQLite it holds the write lock
    that turnout's own transaction is about to take.
    """
    custom = ctx.project.custom_get_condition
    if custom is None:
        return None
    try:
        cond, counter = custom(mode)
    finally:
        ctx.db.session.commit()
    return int(cond), int(counter)


def _choose_condition(session: Session, ctx: ExperimentContext, mode: str,
                      settled: counterbalance.Settled | None = None) -> tuple[int, int]:
    s = ctx.settings
    num_conds = len(ctx.project.conditions) if ctx.project.conditions else s.num_conds
    num_counters = 1 if ctx.project.conditions else s.num_counters
    counts = counterbalance.cell_counts(session, ctx.Participant, codeversion=s.codeversion, mode=mode,
                                        cutoff_minutes=s.cutoff_minutes, clock=ctx.clock, settled=settled)
    return counterbalance.choose(counterbalance.grid(num_conds, num_counters), counts, ctx.rng)


def _settled_counts(ctx: ExperimentContext, mode: str) -> counterbalance.Settled | None:
    """The part of the count that grows with the table, taken before the lock (see Settled);
    None where the database keeps per-cell counters, which are read under the lock."""
    s = ctx.settings
    with ctx.db.begin() as session:
        if counterbalance.uses_counters(session, ctx.Participant):
            return None
        return counterbalance.settled_counts(session, ctx.Participant, codeversion=s.codeversion, mode=mode,
                                             cutoff_minutes=s.cutoff_minutes, clock=ctx.clock)


def peek_condition(ctx: ExperimentContext, mode: str) -> tuple[int, int]:
    """The cell a new participant would get now (psiTurk's ``get_condition``); assigns nothing."""
    custom = _custom_condition(ctx, mode)
    if custom is not None:
        return custom
    with ctx.db.begin() as session:
        return _choose_condition(session, ctx, mode)


def start_experiment(ctx: ExperimentContext, *, hit_id: str, assignment_id: str, worker_id: str,
                     mode: str, info: RequestInfo, offered: Iterable[str | None] = ()) -> Any:
    """Find or create the participant for /exp; returns a detached row with its token.

    ``offered`` are the tokens the request carries (the cookie set by an earlier /exp):
    an existing row's token goes only to a request that already holds it (see
    ``_existing_for_exp``).
    """
    P = ctx.Participant
    uniqueid = f"{worker_id}:{assignment_id}"
    offered = list(offered)
    with ctx.db.begin() as session:
        scope = [P.workerid == worker_id]
        if ctx.settings.allow_repeats:
            scope.append(P.assignmentid == assignment_id)
        rows = list(session.scalars(select(P).where(*scope)))
    if rows:
        return _existing_for_exp(ctx, rows, assignment_id, offered, info)
    lock = f"counterbalance:{ctx.db.tables.participants}:{ctx.settings.codeversion}:{mode}"
    custom = _custom_condition(ctx, mode)
    settled = None if custom else _settled_counts(ctx, mode)
    try:
        with locked_session(ctx.db, lock) as session:
            if session.get(P, uniqueid) is not None:  # lost a race with a double-load
                raise _AlreadyThere
            cond, counter = custom or _choose_condition(session, ctx, mode, settled)
            participant = P(
                uniqueid=uniqueid, assignmentid=assignment_id, workerid=worker_id, hitid=hit_id,
                ipaddress=info.ipaddress, browser=info.browser, platform=info.platform,
                language=info.language, cond=cond, counterbalance=counter,
                codeversion=ctx.settings.codeversion, beginhit=ctx.clock.now(), bonus=0,
                status=int(Status.ALLOCATED), mode=mode, token=new_token(), trial_count=0,
            )
            session.add(participant)
            record_insert(session, ctx.db.models, participant, clock=ctx.clock)
            session.flush()
        return participant
    except (_AlreadyThere, IntegrityError):
        # Another request inserted this participant between our look and our insert.
        with ctx.db.begin() as session:
            rows = list(session.scalars(select(P).where(P.workerid == worker_id)))
        return _existing_for_exp(ctx, rows, assignment_id, offered, info)


class _AlreadyThere(Exception):
    pass


class FinishedDebugRun(Exception):
    """A finished debug participant reopened /exp: the route shows the debug thanks page
    (with its "start as a new participant" link) instead of the experiment."""

    def __init__(self, participant: Any) -> None:
        super().__init__(participant.uniqueid)
        self.participant = participant


def _existing_for_exp(ctx: ExperimentContext, rows: list[Any], assignment_id: str,
                      offered: list[str | None], info: RequestInfo) -> Any:
    """The existing row for /exp, handed out only to the browser that began it.

    psiTurk re-served an existing row (and turnout its token) to anyone who knew the
    worker and assignment IDs, so a stranger could take the token and then read,
    overwrite or lock the participant's data. Now: a request that holds the row's token
    (the cookie the first /exp set) gets the page again while psiTurk allowed a reload;
    one that does not gets psiTurk's 1008, except for a debug row, which psiTurk let
    anyone restart: that gets a fresh token (the previous browser's stops working).
    Whether a row is a debug one is decided by what is stored, not by the request.
    """
    mine = [r for r in rows if r.assignmentid == assignment_id]
    others = [r for r in rows if r.assignmentid != assignment_id]
    if others and not ctx.settings.allow_repeats:
        raise ExperimentError("already_did_exp_hit")
    if not mine:
        # Only reachable with allow_repeats off and no rows of our own, handled above.
        raise ExperimentError("status_incorrectly_set")
    participant = mine[0]
    debug = is_debug_row(participant)
    if debug and participant.status in COMPLETED_STATUSES:
        raise FinishedDebugRun(participant)
    if not debug and (participant.status or 0) >= Status.STARTED:
        raise ExperimentError("already_started_exp")
    if token_matches(participant.token, offered, required=ctx.settings.participant_tokens):
        return participant
    if debug:
        return _fresh_debug_token(ctx, participant)
    if _double_load(ctx, participant, info):
        return participant
    raise ExperimentError("already_started_exp")


# A second load of /exp this soon after the first made the row, before the task began, is
# the same person's double click: both requests leave before either answer (and its cookie)
# arrives, and the browser shows whichever page came last. Refusing it would strand that
# participant on psiTurk's 1008 for good (the cancelled first page never stored its
# cookie). A stranger would need the assignment id within these seconds of the accept, and
# would find a participation with no data in it yet. Both loads of a double click come from
# the same browser, so the second must also come from the address, browser and platform the
# first one stored: a stranger elsewhere who learns the ids at the moment the row appears
# (GET /check_worker_status tells when; the local worker site shows any worker's
# assignments) gets 1008, not the token.
DOUBLE_LOAD_WINDOW = timedelta(seconds=10)


def _double_load(ctx: ExperimentContext, participant: Any, info: RequestInfo) -> bool:
    began = participant.beginhit
    if participant.status != Status.ALLOCATED or began is None:
        return False
    if (participant.ipaddress, participant.browser, participant.platform) != (
            info.ipaddress, info.browser, info.platform):
        return False
    if began.tzinfo is None:
        began = began.replace(tzinfo=UTC)
    return timedelta(0) <= ctx.clock.now() - began <= DOUBLE_LOAD_WINDOW


def _fresh_debug_token(ctx: ExperimentContext, participant: Any) -> Any:
    """Give a debug row a new token (psiTurk let a debug run be reopened from anywhere)."""
    P = ctx.Participant
    participant.token = new_token()
    with ctx.db.begin() as session:
        session.execute(update(P).where(P.uniqueid == participant.uniqueid).values(token=participant.token)
                        .execution_options(synchronize_session=False))
    return participant


# --- /sync ---------------------------------------------------------------------------


def load_data(ctx: ExperimentContext, uniqueid: str, offered: Iterable[str | None]) -> dict[str, Any]:
    P = ctx.Participant
    with ctx.db.begin() as session:
        participant = session.scalar(select(P).where(P.uniqueid == uniqueid)
                                     .options(_undefer_datastring(P)))
        if participant is None:
            raise NotFound(f"no participant {uniqueid!r}")
        _require_token(ctx, participant, offered)
        data = parse_stored(participant.datastring)
        if isinstance(data, dict):
            return data
        return {"condition": participant.cond, "counterbalance": participant.counterbalance,
                "assignmentId": participant.assignmentid, "workerId": participant.workerid,
                "hitId": participant.hitid, "bonus": participant.bonus}


def _undefer_datastring(P: Any) -> Any:
    from sqlalchemy.orm import undefer

    return undefer(P.datastring)


def _stored_trial_count(conn: Any, P: Any, uniqueid: str) -> int:
    c = P.__mapper__.columns
    stored = conn.scalar(select(c.datastring).where(c.uniqueid == uniqueid))
    data = parse_stored(stored)
    return count_trials(data) if isinstance(data, dict) else 0


_SAVE_ORDER = re.compile(r"^(\d{13}-[0-9a-f]{8})\.(\d{1,9})$")


def save_order_key(header: str | None) -> str | None:
    """The sortable key of a save from turnout's psiturk.js, or None for other clients.

    psiturk.js sends ``X-Turnout-Save: <page load>.<sequence>``, where the page load is
    the page's start time in milliseconds plus a random suffix. Keys sort by page load,
    then by save number, so "newer" means "from a later page, or later on the same page".
    """
    if not header:
        return None
    match = _SAVE_ORDER.match(header.strip())
    if not match:
        raise InvalidInput("the X-Turnout-Save header must look like <13-digit ms>-<8 hex>.<number>; "
                           "nothing was saved")
    return f"{match.group(1)}.{int(match.group(2)):09d}"


#: How far a save stamp's page-load time may be ahead of the server's clock. turnout's
#: psiturk.js takes the page-load time from the server (the /exp page's
#: ``turnout-page-load`` meta tag), so a genuine stamp is never ahead; the margin covers a
#: page without that tag in a browser whose clock runs a little fast. A stamp from further
#: ahead would sort after every later save and so lock the participant out (each real save
#: refused with 409): it is refused, and a stored one (planted before this check) is ignored.
SAVE_STAMP_MAX_AHEAD = timedelta(minutes=5)


def latest_acceptable_stamp(ctx: ExperimentContext) -> str:
    """The largest save-order key not from the future (see ``SAVE_STAMP_MAX_AHEAD``)."""
    limit_ms = int((ctx.clock.now() + SAVE_STAMP_MAX_AHEAD).timestamp() * 1000)
    return f"{limit_ms:013d}-ffffffff.999999999"


def refuse_future_stamp(key: str | None, limit: str) -> None:
    if key is not None and key > limit:
        minutes = int(SAVE_STAMP_MAX_AHEAD.total_seconds() // 60)
        raise InvalidInput(f"the X-Turnout-Save header's page-load time is more than {minutes} minutes ahead "
                           "of the server's clock; nothing was saved")


_MYSQL_ESCAPED = ("\\", '"', "'", "\0", "\n", "\r", "\x1a")


def _check_statement_fits(conn: Any, db: Database, text: str) -> None:
    """Refuse (413) a save MariaDB/MySQL would drop the connection over.

    The server closes the connection on a statement over ``max_allowed_packet`` (16 MiB by
    default, the same as ``max_request_bytes``), and the driver escapes quotes, so a body
    under the request limit could still end in a 500. Small saves skip the check.
    """
    if db.backend not in ("mysql", "mariadb") or len(text) < 1_000_000:
        return
    limit = conn.execute(sql_text("SELECT @@max_allowed_packet")).scalar() or 0
    needed = len(text.encode("utf-8")) + sum(text.count(c) for c in _MYSQL_ESCAPED) + 4096
    if needed > int(limit):
        raise PayloadTooLarge(f"this save needs a {needed}-byte statement but the database accepts at most "
                              f"{limit} (MariaDB/MySQL max_allowed_packet); nothing was saved",
                              limit_bytes=int(limit))


@dataclass(frozen=True)
class _SaveStatements:
    """The statements of a /sync PUT, built once per participant table.

    Built from the table (not the ORM class) with bound parameters, and run on the
    session's connection: building the expressions and running them through the ORM was
    a third of a save's CPU time. The stale-save guard is the WHERE clause, as before.
    """

    read: DriverStatement
    write_keyed: DriverStatement
    write_counted: DriverStatement


_save_statement_cache: dict[Any, _SaveStatements] = {}


def _save_statements(P: Any) -> _SaveStatements:
    cached = _save_statement_cache.get(P)
    if cached is None:
        t, c = P.__table__, P.__mapper__.columns  # columns by attribute name
        mine = c.uniqueid == bindparam("uid")
        cached = _save_statement_cache[P] = _SaveStatements(
            read=DriverStatement(select(c.token, c.trial_count).where(mine)),
            # ``limit``: a stored stamp beyond the latest acceptable one (from the future) does
            # not block newer saves; NULL (no limit) leaves that branch false.
            write_keyed=DriverStatement(
                update(t).where(mine, or_(c.save_key.is_(None), c.save_key <= bindparam("new_key"),
                                          c.save_key > bindparam("limit")))
                .values({c.datastring: bindparam("new_text"), c.trial_count: bindparam("new_trials"),
                         c.save_key: bindparam("new_key")})),
            write_counted=DriverStatement(
                update(t).where(mine, or_(c.trial_count.is_(None), c.trial_count <= bindparam("new_trials")))
                .values({c.datastring: bindparam("new_text"), c.trial_count: bindparam("new_trials")})),
        )
    return cached


def save_data(ctx: ExperimentContext, uniqueid: str, body: bytes, offered: Iterable[str | None],
              order: str | None = None) -> int:
    """Store the full task data of a /sync PUT; returns the number of trials now stored.

    One conditional UPDATE does the work, so a stale save that arrives after a newer one
    changes nothing, even when both race. Which save is stale: with turnout's psiturk.js,
    one from an earlier page load or an earlier save of the same page (``order``, see
    ``save_order_key``) — so a participant who reloads the page may start their data
    afresh, as psiTurk allowed. From other clients, one holding fewer trials than stored.
    """
    key = save_order_key(order)
    limit = latest_acceptable_stamp(ctx)
    refuse_future_stamp(key, limit)
    text, data = parse_sync_body(body)
    trials = count_trials(data)
    P = ctx.Participant
    statements = _save_statements(P)
    # One write transaction on a Core connection (no ORM session: see
    # Database.write_connection); on SQLite it holds the write lock from its start, so the
    # read below and the write cannot interleave with another writer.
    with ctx.db.write_connection() as conn:
        row = statements.read.first(conn, {"uid": uniqueid})
        if row is None:
            raise NotFound(f"no participant {uniqueid!r}")
        stored_token, stored_trials = row
        if not token_matches(stored_token, offered, required=ctx.settings.participant_tokens):
            raise Forbidden("this request does not carry the participant token issued with the experiment "
                            "page; nothing was saved")
        if stored_trials is None:
            # A row psiTurk wrote before the upgrade has data but no count yet: count its
            # stored trials once, so the stale-save guard below protects it too.
            c = P.__mapper__.columns
            conn.execute(update(P.__table__).where(c.uniqueid == uniqueid, c.trial_count.is_(None))
                         .values({c.trial_count: _stored_trial_count(conn, P, uniqueid)}))
        _check_statement_fits(conn, ctx.db, text)
        written = (statements.write_keyed if key is not None else statements.write_counted).rowcount(
            conn, {"uid": uniqueid, "new_text": text, "new_trials": trials, "new_key": key, "limit": limit})
        if written != 1:
            c = P.__mapper__.columns
            stored = conn.scalar(select(c.trial_count).where(c.uniqueid == uniqueid))
            if key is not None:
                raise Conflict("a newer save (from a later page load, or later on this page) is already "
                               "stored, so this one was not applied", stored_trials=stored,
                               offered_trials=trials)
            raise Conflict(f"this save holds {trials} trials but {stored} are already stored; "
                           "a newer save arrived first, so this one was not applied",
                           stored_trials=stored, offered_trials=trials)
    return trials


# --- status routes -------------------------------------------------------------------


def _change_status(ctx: ExperimentContext, uniqueid: str, new: Status, *, reason: str,
                   offered: Iterable[str | None] | None, stamp: str | None = None) -> tuple[Outcome, int]:
    """Apply one transition under a row lock; returns the outcome and the status after it."""
    P = ctx.Participant
    with ctx.db.begin(immediate=True) as session:
        participant = session.scalar(select(P).where(P.uniqueid == uniqueid).with_for_update())
        if participant is None:
            raise NotFound(f"no participant {uniqueid!r}")
        if offered is not None:
            _require_token(ctx, participant, offered)
        outcome = transition(session, ctx.db.models, participant, new, reason=reason, clock=ctx.clock)
        if outcome is Outcome.CHANGED and stamp:
            setattr(participant, stamp, ctx.clock.now())
        done = (outcome, int(participant.status or 0))
        who = (participant.workerid, participant.assignmentid, participant.mode)
    if done[0] is Outcome.CHANGED and new == Status.COMPLETED:
        events.participant_completed(*who)  # after the commit, so the line never reports a rollback
    return done


def enter_experiment(ctx: ExperimentContext, uniqueid: str, offered: Iterable[str | None]) -> Outcome:
    return _change_status(ctx, uniqueid, Status.STARTED, reason="inexp", offered=offered, stamp="beginexp")[0]


def quit_experiment(ctx: ExperimentContext, uniqueid: str, offered: Iterable[str | None]) -> Outcome | None:
    """Mark a participant who left early (/quitter); None for a debug run, which is never
    marked as a quitter (psiTurk's rule), whether or not it has a row."""
    if is_debug_id(uniqueid):
        return None
    return _change_status(ctx, uniqueid, Status.QUITEARLY, reason="quitter", offered=offered)[0]


def complete_experiment(ctx: ExperimentContext, uniqueid: str, offered: Iterable[str | None],
                        *, reason: str = "complete") -> Outcome:
    return _change_status(ctx, uniqueid, Status.COMPLETED, reason=reason, offered=offered, stamp="endhit")[0]


def mark_submitted(ctx: ExperimentContext, uniqueid: str) -> tuple[Outcome, int]:
    """/worker_submitted: called from the ad frame (which has no token) before the MTurk submit."""
    return _change_status(ctx, uniqueid, Status.SUBMITTED, reason="worker_submitted", offered=None)


def worker_status(ctx: ExperimentContext, *, worker_id: str, assignment_id: str | None) -> int:
    """psiTurk's /check_worker_status: the status an external ad server should see."""
    P = ctx.Participant
    with ctx.db.begin() as session:
        if ctx.settings.allow_repeats:
            if not assignment_id:
                raise InvalidInput("assignmentId is required when allow_repeats is on")
            status = session.scalar(select(P.status).where(P.workerid == worker_id, P.assignmentid == assignment_id))
        else:
            from sqlalchemy import func

            status = session.scalar(select(func.max(P.status)).where(P.workerid == worker_id))
    return int(status or 0)
