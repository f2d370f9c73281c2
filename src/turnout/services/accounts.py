"""Who may use the dashboard and the API: lab accounts, roles, tokens, login limits.

psiTurk had one shared password compared with ``==``, no lockout, and trusted any user id
in a signed cookie. Here the config login is the first admin, more accounts live in the
database (salted hashes only), every comparison is constant-time, failed logins are
counted in the database (so the limit holds across worker processes), and a session names
a fingerprint of the password it was opened with, so removing an account or changing its
password ends its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from turnout.clock import Clock
from turnout.config import Settings
from turnout.db.dashboard_models import ApiToken, LoginFailure, User
from turnout.db.engine import Database
from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError

ROLES = ("viewer", "payer", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HASH_PREFIXES = ("scrypt:", "pbkdf2:")
TOKEN_PREFIX = "tnt_"
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)


class TooManyAttempts(TurnoutError):
    code = "too_many_attempts"
    http_status = 429


@dataclass(frozen=True)
class Principal:
    """The signed-in person (or script). ``source``: config, user (database) or token."""

    username: str
    role: str
    source: str
    fingerprint: str = ""

    def can(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


def check_role(role: str) -> str:
    if role not in _RANK:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def check_name(name: str, what: str = "user name") -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(f"{what} {name!r} must be 1-64 letters, digits or _ . @ -")
    return name


# --- passwords ---------------------------------------------------------------------------

def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug's format), what ``login_pw`` may hold instead of the password."""
    if not password:
        raise InvalidInput("the password must not be empty")
    return generate_password_hash(password)


def is_password_hash(value: str) -> bool:
    return value.startswith(_HASH_PREFIXES)


def password_matches(stored: str, offered: str) -> bool:
    """``stored`` is a hash or (psiTurk's config) the plain password; constant-time either way."""
    if not stored:
        return False
    if is_password_hash(stored):
        try:
            return check_password_hash(stored, offered)
        except ValueError:  # a malformed hash in the config never matches
            return False
    return hmac.compare_digest(stored.encode("utf-8"), offered.encode("utf-8"))


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


# --- logging in --------------------------------------------------------------------------

def _failures(db: Database, study: str, address: str, username: str, clock: Clock) -> tuple[int, int]:
    since = clock.now() - FAILURE_WINDOW
    with db.begin() as session:
        by_address = session.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.address == address[:64], LoginFailure.at >= since))
        by_account = session.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.study == study, LoginFailure.username == username[:64], LoginFailure.at >= since))
    return int(by_address or 0), int(by_account or 0)


def authenticate(db: Database, settings: Settings, username: str, password: str, *, address: str,
                 clock: Clock, max_failures: int = MAX_FAILURES) -> Principal | None:
    """The principal for a correct login, None for a wrong one (recorded), or
    ``TooManyAttempts`` once the address or the account has failed too often lately."""
    study = db.tables.participants
    by_address, by_account = _failures(db, study, address, username, clock)
    if by_address >= max_failures or by_account >= max_failures:
        raise TooManyAttempts(f"too many failed logins in the last {int(FAILURE_WINDOW.total_seconds() // 60)} "
                              "minutes; wait and try again")
    principal = _check_login(db, settings, username, password)
    if principal is None:
        now = clock.now()
        with db.begin(immediate=True) as session:
            session.add(LoginFailure(study=study, address=address[:64], username=username[:64], at=now))
            # Old rows are of no use to the window; keep the table small.
            session.execute(delete(LoginFailure).where(LoginFailure.at < now - 4 * FAILURE_WINDOW))
    return principal


def _check_login(db: Database, settings: Settings, username: str, password: str) -> Principal | None:
    config_user = settings.login_username
    if config_user and hmac.compare_digest(username.encode(), config_user.encode()):
        if password_matches(settings.login_pw, password):
            return Principal(config_user, "admin", "config", _fingerprint(settings.login_pw))
        return None
    with db.begin() as session:
        user = session.scalar(select(User).where(User.study == db.tables.participants,
                                                 User.username == username))
    if user is None:
        # Spend the time a hash check takes, so a wrong name is not told apart by timing.
        password_matches(_DUMMY_HASH, password)
        return None
    if not password_matches(user.password_hash, password):
        return None
    return Principal(user.username, user.role, "user", _fingerprint(user.password_hash))


_DUMMY_HASH = generate_password_hash("turnout-not-a-password")


def load_principal(db: Database, settings: Settings, data: dict[str, Any]) -> Principal | None:
    """The principal a session names, if it still holds (same account, same password)."""
    username, source, fingerprint = data.get("username"), data.get("source"), data.get("fingerprint")
    if not isinstance(username, str) or not isinstance(fingerprint, str):
        return None
    if source == "config":
        if username == settings.login_username and hmac.compare_digest(fingerprint, _fingerprint(settings.login_pw)):
            return Principal(username, "admin", "config", fingerprint)
        return None
    if source == "user":
        with db.begin() as session:
            user = session.scalar(select(User).where(User.study == db.tables.participants,
                                                     User.username == username))
        if user is not None and hmac.compare_digest(fingerprint, _fingerprint(user.password_hash)):
            return Principal(user.username, user.role, "user", fingerprint)
    return None


# --- accounts ------------------------------------------------------------------------------

def _audit(session: Any, db: Database, clock: Clock, actor: str, action: str, target: str, **detail: Any) -> None:
    """An Activity-log row for an account or token change, in the change's own transaction.
    Accounts belong to no marketplace, so mode and marketplace are "-"."""
    session.add(db.models.AuditEvent(
        study=db.tables.participants, at=clock.now(), actor=actor[:128], action=action, mode="-",
        marketplace="-", target=target[:128], outcome="ok", ledger_id=None,
        detail=json.dumps(detail, sort_keys=True) if detail else None))


def generate_password() -> str:
    """A password for a new account, to be shown once (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def add_user(db: Database, settings: Settings, username: str, password: str, role: str, *,
             clock: Clock, actor: str = "cli") -> dict[str, Any]:
    check_name(username)
    check_role(role)
    if username == settings.login_username:
        raise Conflict(f"{username!r} is the config login (login_username); choose another name")
    hashed = hash_password(password)
    try:
        with db.begin(immediate=True) as session:
            session.add(User(study=db.tables.participants, username=username, password_hash=hashed,
                             role=role, created_at=clock.now()))
            session.flush()
            _audit(session, db, clock, actor, "account.add", username, role=role)
    except IntegrityError:
        raise Conflict(f"user {username!r} already exists") from None
    return {"username": username, "role": role, "source": "database"}


def _admins_left(session: Any, db: Database, settings: Settings, without: str) -> int:
    """How many admins there would be without ``without`` (the config login counts as one)."""
    in_db = session.scalar(select(func.count()).select_from(User).where(
        User.study == db.tables.participants, User.role == "admin", User.username != without))
    return int(in_db or 0) + (1 if settings.login_username and settings.login_username != without else 0)


def _check_change(settings: Settings, username: str, actor_name: str | None, what: str) -> None:
    if username == settings.login_username:
        raise Conflict(f"{username!r} is the config login (login_username in config.txt): "
                       f"it is always an admin and cannot be {what} here")
    if actor_name is not None and username == actor_name:
        raise Conflict(f"you cannot {'remove' if what == 'removed' else 'change the role of'} your own "
                       "account; ask another admin")


def set_role(db: Database, settings: Settings, username: str, role: str, *, clock: Clock,
             actor: str = "cli", actor_name: str | None = None) -> dict[str, Any]:
    """Change a database account's role; never the config login's, nor the last admin's."""
    check_role(role)
    _check_change(settings, username, actor_name, "changed")
    with db.begin(immediate=True) as session:
        user = session.scalar(select(User).where(User.study == db.tables.participants, User.username == username))
        if user is None:
            raise NotFound(f"no user {username!r}")
        old = user.role
        if old == role:
            return {"username": username, "role": role, "source": "database", "changed": False}
        if old == "admin" and _admins_left(session, db, settings, username) == 0:
            raise Conflict(f"{username!r} is the last admin; make another admin first")
        user.role = role
        _audit(session, db, clock, actor, "account.role", username, role=role, was=old)
    return {"username": username, "role": role, "source": "database", "changed": True}


def list_users(db: Database, settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if settings.login_username:
        rows.append({"username": settings.login_username, "role": "admin", "source": "config", "created_at": None})
    with db.begin() as session:
        for user in session.scalars(select(User).where(User.study == db.tables.participants).order_by(User.username)):
            rows.append({"username": user.username, "role": user.role, "source": "database",
                         "created_at": user.created_at.isoformat()})
    return rows


def remove_user(db: Database, username: str, *, settings: Settings | None = None, clock: Clock | None = None,
                actor: str = "cli", actor_name: str | None = None) -> None:
    """Remove a database account (its sessions end with it). With ``settings``: never the
    config login, the caller's own account or the last admin; with ``clock``: audited."""
    if settings is not None:
        _check_change(settings, username, actor_name, "removed")
    with db.begin(immediate=True) as session:
        user = session.scalar(select(User).where(User.study == db.tables.participants, User.username == username))
        if user is not None and settings is not None and user.role == "admin" \
                and _admins_left(session, db, settings, username) == 0:
            raise Conflict(f"{username!r} is the last admin; make another admin first")
        gone = session.execute(delete(User).where(User.study == db.tables.participants,
                                                  User.username == username)).rowcount
        if gone and clock is not None:
            _audit(session, db, clock, actor, "account.remove", username, role=user.role if user else None)
    if not gone:
        raise NotFound(f"no user {username!r} (the config login is changed in config.txt, not here)")


# --- API tokens -----------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(db: Database, *, name: str, role: str, clock: Clock,
                 actor: str = "cli") -> tuple[dict[str, Any], str]:
    """A new bearer token; returns its listing row and the token itself (shown once, never stored)."""
    check_name(name, "token name")
    check_role(role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.begin(immediate=True) as session:
        row = ApiToken(study=db.tables.participants, name=name, token_hash=_token_hash(token),
                       prefix=token[:10], role=role, created_at=clock.now())
        session.add(row)
        session.flush()
        listing = _token_row(row)
        _audit(session, db, clock, actor, "token.create", f"token:{name}", id=row.id, role=role)
    return listing, token


def _token_row(row: ApiToken) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "role": row.role, "prefix": row.prefix,
            "created_at": row.created_at.isoformat(),
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
            "revoked": row.revoked_at is not None}


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.begin() as session:
        return [_token_row(r) for r in session.scalars(
            select(ApiToken).where(ApiToken.study == db.tables.participants).order_by(ApiToken.id))]


def revoke_token(db: Database, ident: str, *, clock: Clock, actor: str = "cli", by_id: bool = False) -> int:
    """Revoke by id or by name (``by_id``: by id only); returns how many tokens were revoked."""
    T = ApiToken
    match = T.name == ident
    if ident.isdigit():
        match = T.id == int(ident) if by_id else or_(T.id == int(ident), T.name == ident)
    elif by_id:
        raise InvalidInput(f"token id {ident!r} must be a whole number")
    with db.begin(immediate=True) as session:
        changed = session.execute(update(T).where(T.study == db.tables.participants, match, T.revoked_at.is_(None))
                                  .values(revoked_at=clock.now())).rowcount
        if changed:
            _audit(session, db, clock, actor, "token.revoke", f"token:{ident}", count=int(changed))
    if not changed:
        raise NotFound(f"no active token {ident!r} (see `turnout token list`)")
    return int(changed)


def principal_for_token(db: Database, token: str, *, clock: Clock) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _token_hash(token)
    with db.begin() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest,
                                                    ApiToken.study == db.tables.participants))
        if row is None or row.revoked_at is not None:
            return None
        name, role, last = row.name, row.role, row.last_used_at
    now = clock.now()
    if last is None or now - last > timedelta(minutes=1):  # one write a minute at most
        with db.begin(immediate=True) as session:
            session.execute(update(ApiToken).where(ApiToken.token_hash == digest).values(last_used_at=now))
    return Principal(f"token:{name}", role, "token")


def fill_new_project_login(config_text: str, username: str = "admin") -> tuple[str, str | None]:
    """For ``turnout init``: set an empty ``login_username``/``login_pw`` in a new config.txt
    to ``username`` and the hash of a generated password; returns the text and the password
    (to print once; it is stored nowhere), or None when the template has no such keys."""
    if not re.search(r"^login_pw =\s*$", config_text, re.M) or not re.search(r"^login_username =\s*$",
                                                                              config_text, re.M):
        return config_text, None
    password = secrets.token_urlsafe(12)
    text = re.sub(r"^login_username =\s*$", f"login_username = {username}", config_text, count=1, flags=re.M)
    # A literal % in the hash would be read as config interpolation: escape it.
    text = re.sub(r"^login_pw =\s*$", lambda _m: "login_pw = " + hash_password(password).replace("%", "%%"),
                  text, count=1, flags=re.M)
    return text, password
