"""A whole local-mode study in one process, for the simulation and worker-site tests.

The experiment server, the offline marketplace at ``/_mturk`` and the worker site at
``/_mturk/worker`` are assembled the way ``turnout serve`` mounts them, on one clock (a
ManualClock, so assignment deadlines pass when a test says so), and served by werkzeug's
threaded server on a free loopback port. The project's ad_url points at that port, so a
HIT posted for it sends workers to this server.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server

from turnout.clock import ManualClock
from turnout.config import Settings, load_settings
from turnout.db.engine import Database
from turnout.db.migrate import upgrade

EXTERNAL_QUESTION = ('<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
                     '2006-07-14/ExternalQuestion.xsd"><ExternalURL>{url}</ExternalURL>'
                     "<FrameHeight>600</FrameHeight></ExternalQuestion>")


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Late:
    """A WSGI app set after the server is bound (the app's settings need the port)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class Study:
    url: str
    port: int
    settings: Settings
    db: Database
    clock: ManualClock
    app: Any  # the experiment Flask app
    marketplace: Any  # turnout.marketplace.local.MarketplaceApp

    @property
    def state(self) -> Any:
        return self.marketplace.state

    @property
    def ad_url(self) -> str:
        return f"{self.url}/pub?mode=local"

    def post_hit(self, *, assignments: int, duration_s: int = 3600, title: str = "Stroop rehearsal",
                 reward: str = "1.00") -> str:
        """CreateHIT through an unmodified boto3 client at the mounted marketplace."""
        from turnout.marketplace.client import make_client

        client = make_client("local", endpoint_url=f"{self.url}/_mturk/", store=self.settings.marketplace_store,
                             max_attempts=1)
        answer = client.create_hit(
            Title=title, Description="Name the ink colour of each word.", Keywords="stroop, test",
            Reward=reward, MaxAssignments=assignments, AssignmentDurationInSeconds=duration_s,
            LifetimeInSeconds=24 * 3600, Question=EXTERNAL_QUESTION.format(url=self.ad_url))
        return str(answer["HIT"]["HITId"])

    def rows(self) -> list[Any]:
        P = self.db.models.Participant
        with self.db.begin() as session:
            found = list(session.query(P).order_by(P.uniqueid))
            for row in found:
                _ = row.datastring
            return found


@contextmanager
def running_study(project: Path, *, clock: ManualClock | None = None, seed: int = 0,
                  env: dict[str, str] | None = None) -> Iterator[Study]:
    from turnout.app import create_app
    from turnout.marketplace.local import create_app as create_marketplace
    from turnout.simulation.worker_site import create_worker_site

    clock = clock or ManualClock()
    late = _Late()
    server = make_server("127.0.0.1", 0, late, threaded=True, request_handler=_Quiet)
    port = server.server_port
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(project / "no-global"),
               "TURNOUT_DATABASE_URL": f"sqlite:///{project / 'participants.db'}",
               "TURNOUT_AD_URL_DOMAIN": "127.0.0.1", "TURNOUT_AD_URL_PORT": str(port),
               "TURNOUT_AD_URL_PROTOCOL": "http", "TURNOUT_LAUNCH_IN_MODE": "local", **(env or {})}
    settings = load_settings(project, environ=environ)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    app = create_app(settings, db=db, clock=clock, rng=random.Random(seed))
    store = str(settings.marketplace_store)
    settings.marketplace_store.parent.mkdir(parents=True, exist_ok=True)
    marketplace = create_marketplace(store, clock=clock)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {  # type: ignore[method-assign]
        "/_mturk": marketplace, "/_mturk/worker": create_worker_site(store, clock=clock)})
    late.app = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Study(url=f"http://127.0.0.1:{port}", port=port, settings=settings, db=db, clock=clock, app=app,
                    marketplace=marketplace)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        db.dispose()
