"""The runner lease: one row per job store saying which process runs its jobs, until when.

APScheduler 3's job store has no locking: two schedulers on one table both run every job
(its FAQ: a job store cannot be shared by several schedulers). So a runner must hold this
lease to start, renews it every few seconds, and stops the moment a renewal finds the
lease gone. A runner that died stops renewing; once its lease expires the next runner
takes it over with a conditional UPDATE, so of two starting at once exactly one wins.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from turnout.clock import Clock
from turnout.db.engine import Database
from turnout.errors import Conflict
from turnout.services.campaigns import models
from turnout.services.tasks import lease_name

LEASE_SECONDS = 30      # a runner silent this long is presumed dead
RENEW_SECONDS = 5       # how often a live runner renews


class LeaseHeld(Conflict):
    """Another live runner holds the lease."""


@dataclass
class Lease:
    db: Database
    clock: Clock
    holder: str
    ttl: timedelta = timedelta(seconds=LEASE_SECONDS)

    @classmethod
    def for_this_process(cls, db: Database, clock: Clock, ttl_seconds: float = LEASE_SECONDS) -> Lease:
        holder = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return cls(db, clock, holder, timedelta(seconds=ttl_seconds))

    @property
    def name(self) -> str:
        return lease_name(self.db)

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming who has it."""
        L = models(self.db).RunnerLease
        now = self.clock.now()
        host, pid = socket.gethostname()[:128], os.getpid()
        with self.db.begin(immediate=True) as session:
            current = session.get(L, self.name)
            if current is None:
                session.add(L(name=self.name, holder=self.holder, host=host, pid=pid, started_at=now,
                              heartbeat_at=now, expires_at=now + self.ttl))
                try:
                    session.flush()
                except IntegrityError:
                    raise LeaseHeld("another runner started at the same moment; only one may run") from None
                return
            if current.holder != self.holder and current.expires_at > now:
                age = (now - current.heartbeat_at).total_seconds()
                raise LeaseHeld(f"another runner is already running for this database ({current.host} pid "
                                f"{current.pid}, last heartbeat {age:.0f}s ago); stop it first, or wait "
                                f"{(current.expires_at - now).total_seconds():.0f}s if it has died")
            old_holder, old_expiry = current.holder, current.expires_at
            changed = session.execute(
                update(L).where(L.name == self.name, L.holder == old_holder, L.expires_at == old_expiry)
                .values(holder=self.holder, host=host, pid=pid, started_at=now, heartbeat_at=now,
                        expires_at=now + self.ttl).execution_options(synchronize_session=False)).rowcount
            if changed != 1:
                raise LeaseHeld("another runner took over the lease at the same moment; only one may run")

    def renew(self) -> bool:
        """Extend the lease; False means it was lost (expired and taken): stop at once."""
        L = models(self.db).RunnerLease
        now = self.clock.now()
        with self.db.begin(immediate=True) as session:
            changed = session.execute(
                update(L).where(L.name == self.name, L.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False)).rowcount
        return changed == 1

    def release(self) -> None:
        """Give the lease up at a clean stop, so the next runner need not wait for expiry."""
        L = models(self.db).RunnerLease
        now = self.clock.now()
        with self.db.begin(immediate=True) as session:
            session.execute(update(L).where(L.name == self.name, L.holder == self.holder)
                            .values(expires_at=now, heartbeat_at=now).execution_options(synchronize_session=False))
