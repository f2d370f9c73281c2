"""Simulated workers: take a HIT in the offline marketplace and do the study over HTTP.

Each worker carries out a ``Plan`` (behaviour.py) with the marketplace's worker-side
Python API (find, preview, accept, return) and, for everything a browser does, the same
HTTP requests a psiTurk project's pages and psiturk.js send:

    GET  <ExternalURL>?assignmentId&hitId&turkSubmitTo&workerId   the ad, in the HIT frame
    GET  /consent?...  then  GET /exp?...                          the popup
    GET  same-origin scripts and the pages task.js preloads
    GET  /sync/<W%3AA>                                             psiturk.js loads the record
    PUT  /sync/<W%3AA> ... POST /inexp ... PUT /sync ...           instructions, trials, saves
                                                                   (each with X-Turnout-Save)
    GET  <project route>?uniqueId=W:A                              e.g. the example's compute_bonus
    GET  /complete?uniqueId=W:A&mode=...&turnout_token=...         completeHIT()
    GET  <ad again>  ->  GET /worker_submitted  ->  POST the thanks page's form (externalSubmit)

A dropout instead reports itself the way psiturk.js does when the page is left (a last
PUT /sync and POST /quitter) and returns the HIT; an abandoner just stops, and the
marketplace marks the assignment Abandoned when its deadline passes.

Every write carries the participant token read from the /exp page, as psiturk.js sends
it. Only loopback hosts are ever contacted (browser.py).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from turnout.clock import Clock, SystemClock
from turnout.marketplace.local.errors import WorkerActionRefused

from .behaviour import Fate, Plan
from .browser import Browser, NotLoopback, Response, is_loopback_url

__all__ = ["Outcome", "Report", "Result", "SimulatedWorker", "WorkerMarketplace", "run_workers"]

log = logging.getLogger("turnout.simulation")

TOKEN_META = re.compile(r'<meta\s+name="turnout-participant-token"\s+content="([^"]+)"', re.IGNORECASE)
ERROR_NUMBER = re.compile(r"<b>\s*Error\s*</b>\s*:\s*(\d+)", re.IGNORECASE)
SCRIPT_SRC = re.compile(r"<script[^>]+src\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_PAGE = re.compile(r"[\"']([A-Za-z0-9_\-./]+\.html)[\"']")
COMPUTE_BONUS = re.compile(r"computeBonus\(\s*[\"']([^\"']+)[\"']")
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.IGNORECASE | re.DOTALL)
ATTR = re.compile(r"([A-Za-z_:-]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)")
INPUT = re.compile(r"<input\b([^>]*)>", re.IGNORECASE)

SAVE_ATTEMPTS = 6            # psiturk.js's SAVE_MAX_ATTEMPTS
RETRY_FIRST_DELAY_S = 0.25   # real seconds; doubles per attempt
MAX_PRELOADS = 20
MAX_SCRIPTS = 12
MAX_HIT_TRIES = 5            # another worker may take the last slot between find and accept
LIB_PATH = re.compile(r"/(lib|vendor)/|\.min\.js$|/psiturk\.js$")


class WorkerMarketplace(Protocol):
    """What a simulated worker needs from the marketplace: ``marketplace.local.WorkerSide``."""

    def register(self, worker_id: str | None = None, **attributes: Any) -> Any: ...
    def assignable_hits(self, worker_id: str, *, limit: int = 100) -> list[Any]: ...
    def preview(self, worker_id: str, hit_id: str) -> Any: ...
    def accept(self, worker_id: str, hit_id: str) -> Any: ...
    def return_assignment(self, assignment_id: str, *, worker_id: str | None = None) -> Any: ...
    def assignment(self, assignment_id: str) -> Any: ...
    def task_url_for(self, assignment: Any, hit: Any, *, turk_submit_to: str) -> str | None: ...


class Outcome:
    """How a simulated visit ended, as the report counts it."""

    SUBMITTED = "submitted"   # finished and the assignment was submitted
    QUIT = "quit"             # left part-way; the server marked them QUITEARLY; HIT returned
    RETURNED = "returned"     # returned the HIT without starting
    ABANDONED = "abandoned"   # stopped part-way; the assignment will pass its deadline
    NO_HIT = "no_hit"         # found no assignable HIT they qualify for
    REFUSED = "refused"       # the experiment turned them away (a psiTurk error page)
    ERROR = "error"           # something failed that should not have


@dataclass
class Result:
    """What happened to one simulated worker."""

    index: int
    worker_id: str
    fate: Fate
    outcome: str = Outcome.ERROR
    hit_id: str | None = None
    assignment_id: str | None = None
    uniqueid: str | None = None
    trials_saved: int = 0
    error_number: int | None = None
    detail: str = ""
    requests: Counter[str] = field(default_factory=Counter)
    # Things that went wrong without ending the visit (e.g. the project's bonus route failed).
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "worker_id": self.worker_id, "fate": self.fate.value,
                "outcome": self.outcome, "hit_id": self.hit_id, "assignment_id": self.assignment_id,
                "uniqueid": self.uniqueid, "trials_saved": self.trials_saved,
                "error_number": self.error_number, "detail": self.detail, "requests": dict(self.requests),
                "problems": list(self.problems)}


@dataclass
class Report:
    results: list[Result]

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.results))

    def summary(self) -> str:
        counts = self.counts()
        order = [Outcome.SUBMITTED, Outcome.QUIT, Outcome.RETURNED, Outcome.ABANDONED, Outcome.NO_HIT,
                 Outcome.REFUSED, Outcome.ERROR]
        parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
        return f"{len(self.results)} simulated workers: " + (", ".join(parts) or "none")


class _Stop(Exception):
    """Ends a visit early with an outcome (a refusal, a failure)."""

    def __init__(self, outcome: str, detail: str, error_number: int | None = None) -> None:
        super().__init__(detail)
        self.outcome, self.detail, self.error_number = outcome, detail, error_number


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def _attrs(text: str) -> dict[str, str]:
    return {k.lower(): html.unescape(v.strip("\"'")) for k, v in ATTR.findall(text)}


def parse_form(page: str) -> tuple[str, dict[str, str]] | None:
    """The first form's action and its hidden fields (the thanks page's externalSubmit form)."""
    match = FORM.search(page)
    if not match:
        return None
    action = _attrs(match.group(1)).get("action", "")
    fields = {}
    for raw in INPUT.findall(match.group(2)):
        attrs = _attrs(raw)
        if attrs.get("type", "text").lower() == "hidden" and attrs.get("name"):
            fields[attrs["name"]] = attrs.get("value", "")
    return action, fields


def find_link(page: str, path: str) -> str | None:
    """A same-site link to ``path`` (e.g. ``/consent``) in a page, as written by psiTurk templates."""
    match = re.search(r"(?:https?://[^\s\"'<>]*)?" + re.escape(path) + r"\?[^\s\"'<>]+", page)
    return html.unescape(match.group(0)) if match else None


class SimulatedWorker:
    """Carries out one ``Plan`` against the marketplace and the experiment server.

    ``pace`` is real seconds per simulated second: 0 runs as fast as the server answers
    (the CLI's default), 0.1 spreads a ten-minute visit over a minute (background
    arrivals, so a demo's dashboard shows people in progress). ``sleep`` is injectable so
    tests never wait.
    """

    def __init__(self, plan: Plan, marketplace: WorkerMarketplace, *, clock: Clock | None = None,
                 pace: float = 0.0, sleep: Callable[[float], None] = time.sleep,
                 turk_submit_to: str | None = None, marketplace_path: str = "/_mturk",
                 custom_routes: Sequence[str] | None = None, timeout: float = 30.0) -> None:
        self.plan = plan
        self.market = marketplace
        self.clock = clock or SystemClock()
        self.pace = max(0.0, pace)
        self.sleep = sleep
        self.turk_submit_to = turk_submit_to
        self.marketplace_path = marketplace_path
        self.custom_routes = custom_routes
        self.browser = Browser(plan.user_agent, plan.language, timeout=timeout)
        self.result = Result(index=plan.index, worker_id=plan.worker_id, fate=plan.fate)
        self._started = self.clock.now()
        self._elapsed_ms = 0
        self.token: str | None = None
        self.task: dict[str, Any] = {}
        self._probing = False  # calling a guessed custom route, not one the project's script names
        self._page_load = ""     # psiturk.js's X-Turnout-Save page-load id, set when /exp loads
        self._save_sequence = 0

    # ------------------------------------------------------------------ time

    def now_ms(self) -> int:
        """The worker's clock: when the visit began plus the simulated time spent."""
        return _ms(self._started + timedelta(milliseconds=self._elapsed_ms))

    def wait(self, ms: int) -> None:
        self._elapsed_ms += ms
        if self.pace > 0:
            self.sleep(min(ms / 1000 * self.pace, 60.0))

    # ------------------------------------------------------------------ HTTP helpers

    def _count(self, method: str, url: str) -> None:
        path = urllib.parse.urlsplit(url).path
        key = "/sync" if path.startswith("/sync/") else path
        self.result.requests[f"{method} {key}"] += 1

    def get(self, url: str, **kwargs: Any) -> Response:
        self._count("GET", url)
        return self.browser.get(url, **kwargs)

    def page(self, url: str) -> Response:
        """A page the worker sees; a psiTurk error page ends the visit as a refusal."""
        reply = self.get(url)
        found = ERROR_NUMBER.search(reply.text) if reply.ok else None
        if found:
            raise _Stop(Outcome.REFUSED, f"{urllib.parse.urlsplit(url).path} showed psiTurk error {found.group(1)}",
                        int(found.group(1)))
        if not reply.ok:
            raise _Stop(Outcome.ERROR, f"GET {urllib.parse.urlsplit(url).path} answered HTTP {reply.status}")
        return reply

    @property
    def token_headers(self) -> dict[str, str]:
        return {"X-Turnout-Token": self.token} if self.token else {}

    def xhr(self, method: str, url: str, *, form: dict[str, str] | None = None,
            params: dict[str, str] | None = None) -> Response:
        """A same-origin jQuery request: token header, X-Requested-With, JSON expected."""
        headers = {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json, text/javascript, */*; q=0.01",
                   **self.token_headers}
        self._count(method, url)
        if method == "POST":
            return self.browser.post_form(url, form or {}, headers=headers)
        if params:
            url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return self.browser.request(method, url, headers=headers)

    # ------------------------------------------------------------------ psiturk.js's model

    def add_event(self, eventtype: str, value: Any) -> None:
        events = self.task["eventdata"]
        now = self.now_ms()
        interval = 0 if eventtype == "initialized" or not events else now - events[-1]["timestamp"]
        events.append({"eventtype": eventtype, "value": value, "timestamp": now, "interval": interval})

    def record(self, trialdata: dict[str, Any]) -> None:
        self.task["data"].append({"uniqueid": self.task["id"], "current_trial": self.task["currenttrial"],
                                  "dateTime": self.now_ms(), "trialdata": trialdata})
        self.task["currenttrial"] += 1

    def save(self, sync_url: str) -> None:
        """psiturk.js saveData(): PUT every attribute, retried on 5xx or a dropped connection."""
        body = dict(self.task)
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            self._count("PUT", sync_url)
            self._save_sequence += 1  # a retry too: it carries the newest data, as in psiturk.js
            headers = {**self.token_headers, "X-Turnout-Save": f"{self._page_load}.{self._save_sequence}"}
            try:
                reply = self.browser.put_json(sync_url, body, headers=headers)
            except OSError as exc:  # a dropped connection: psiturk.js retries those
                problem = f"network error {exc}"
            else:
                if reply.ok:
                    self.result.trials_saved = len(body["data"])
                    return
                problem = f"HTTP {reply.status}"
                if reply.status != 429 and reply.status < 500:
                    raise _Stop(Outcome.ERROR, f"PUT /sync refused: {problem} {reply.text[:200]}")
            if attempt < SAVE_ATTEMPTS:
                time.sleep(RETRY_FIRST_DELAY_S * 2 ** (attempt - 1))
        raise _Stop(Outcome.ERROR, f"PUT /sync failed {SAVE_ATTEMPTS} times ({problem})")

    # ------------------------------------------------------------------ the visit

    def run(self) -> Result:
        plan = self.plan
        try:
            self.market.register(plan.worker_id)
            self._visit()
        except _Stop as stop:
            self.result.outcome, self.result.detail = stop.outcome, stop.detail
            self.result.error_number = stop.error_number
        except NotLoopback as exc:
            self.result.outcome, self.result.detail = Outcome.ERROR, str(exc)
        except OSError as exc:  # refused or reset: the server stopped, or never ran
            log.info("simulated worker %s: the server did not answer: %s", plan.worker_id, exc)
            self.result.outcome, self.result.detail = Outcome.ERROR, f"the server did not answer: {exc}"
        except Exception as exc:  # one worker's failure is reported, never fatal to the run
            log.warning("simulated worker %s failed: %s: %s", plan.worker_id, type(exc).__name__, exc)
            self.result.outcome, self.result.detail = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
        return self.result

    def _find_and_accept(self) -> tuple[Any, Any]:
        worker_id = self.plan.worker_id
        tried: set[str] = set()
        for _ in range(MAX_HIT_TRIES):
            hits = [h for h in self.market.assignable_hits(worker_id)
                    if h.hit_id not in tried and h.status == "Assignable" and h.external_url
                    and is_loopback_url(h.external_url)]
            if not hits:
                break
            hit = hits[0]
            tried.add(hit.hit_id)
            try:
                self.market.preview(worker_id, hit.hit_id)
                preview_url = self.market.task_url_for(None, hit, turk_submit_to=self._submit_root(hit))
                if preview_url:
                    self.page(preview_url)
                self.wait(self.plan.ad_ms // 2)
                return hit, self.market.accept(worker_id, hit.hit_id)
            except WorkerActionRefused as exc:  # taken or expired in the meantime: look again
                log.debug("worker %s could not take HIT %s: %s", worker_id, hit.hit_id, exc)
        raise _Stop(Outcome.NO_HIT, "no assignable HIT this worker qualifies for")

    def _submit_root(self, hit: Any) -> str:
        """turkSubmitTo: the offline marketplace's root, where externalSubmit lives."""
        if self.turk_submit_to:
            return self.turk_submit_to
        parts = urllib.parse.urlsplit(hit.external_url)
        return f"{parts.scheme}://{parts.netloc}{self.marketplace_path}"

    def _hold_submit_proof(self, assignment_id: str, turk_submit_to: str) -> None:
        """Keep the externalSubmit proof the worker site would have set at accept time."""
        submit_key = getattr(self.market, "submit_key", None)
        if submit_key is None:  # a marketplace stand-in without the proof
            return
        from turnout.marketplace.local.wsgi import submit_cookie_name

        root = urllib.parse.urlsplit(turk_submit_to)
        self.browser.set_cookie(turk_submit_to, submit_cookie_name(assignment_id), submit_key(assignment_id),
                                path=root.path.rstrip("/") + "/mturk/")

    def _visit(self) -> None:
        plan, result = self.plan, self.result
        hit, assignment = self._find_and_accept()
        result.hit_id, result.assignment_id = hit.hit_id, assignment.assignment_id
        turk_submit_to = self._submit_root(hit)
        self._hold_submit_proof(assignment.assignment_id, turk_submit_to)
        ad_url = self.market.task_url_for(assignment, hit, turk_submit_to=turk_submit_to)
        assert ad_url is not None
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(ad_url).query))
        mode = query.get("mode", "local")
        ids = {"hitId": hit.hit_id, "assignmentId": assignment.assignment_id, "workerId": plan.worker_id,
               "mode": mode}
        uniqueid = f"{plan.worker_id}:{assignment.assignment_id}"
        result.uniqueid = uniqueid

        ad = self.page(ad_url)
        self.wait(plan.ad_ms - plan.ad_ms // 2)
        if plan.fate is Fate.RETURN:
            self.market.return_assignment(assignment.assignment_id, worker_id=plan.worker_id)
            raise _Stop(Outcome.RETURNED, "read the ad and returned the HIT")

        # The ad's button opens the consent page in a popup; consent's button opens /exp.
        consent_url = urllib.parse.urljoin(ad.url, find_link(ad.text, "/consent")
                                           or "/consent?" + urllib.parse.urlencode(ids))
        consent = self.page(consent_url)
        self.wait(plan.consent_ms)
        exp_url = urllib.parse.urljoin(consent.url, find_link(consent.text, "/exp")
                                       or "/exp?" + urllib.parse.urlencode(ids))
        exp = self.page(exp_url)
        found = TOKEN_META.search(exp.text)
        self.token = html.unescape(found.group(1)) if found else None
        # psiturk.js orders its saves: "<13-digit load time in ms>-<8 hex>.<sequence>".
        suffix = hashlib.sha256(f"{plan.seed}:page".encode()).hexdigest()[:8]
        self._page_load = f"{self.now_ms():013d}-{suffix}"
        bonus_routes, pages = self._load_page_assets(exp)

        # new PsiTurk(uniqueId, adServerLoc, mode): the model, then a synchronous fetch.
        sync_url = urllib.parse.urljoin(exp.url, "/sync/" + urllib.parse.quote(uniqueid, safe=""))
        self.task = {"condition": 0, "counterbalance": 0, "assignmentId": 0, "workerId": 0, "hitId": 0,
                     "currenttrial": 0, "bonus": 0, "data": [], "questiondata": {}, "eventdata": [],
                     "useragent": plan.user_agent, "mode": mode, "id": uniqueid}
        self.add_event("initialized", None)
        self.add_event("window_resize", list(plan.window))
        loaded = self.xhr("GET", sync_url)
        if not loaded.ok:
            raise _Stop(Outcome.ERROR, f"GET /sync answered HTTP {loaded.status}")
        self.task.update(loaded.json())
        self.task["id"] = uniqueid

        self._instructions(pages)
        self.save(sync_url)                                      # startTask(): saveData() ...
        inexp = self.xhr("POST", urllib.parse.urljoin(exp.url, "inexp"), form={"uniqueId": uniqueid})
        if not inexp.ok:                                         # ... and POST inexp
            raise _Stop(Outcome.ERROR, f"POST /inexp answered HTTP {inexp.status}")

        condition = self.task.get("condition", 0)
        trials = plan.trials(condition if isinstance(condition, int) else 0)
        checkpoints = set(plan.saves_after())
        for number, trial in enumerate(trials):
            if plan.stop_after is not None and number >= plan.stop_after:
                break
            self.wait(trial.rt_ms)
            self.record(dict(trial.data))
            self.wait(trial.gap_ms)
            if number in plan.focus_breaks:
                self.add_event("focus", "off")
                self.wait(4000 + 1000 * (number % 7))
                self.add_event("focus", "on")
            if number + 1 in checkpoints and number + 1 < plan.total_trials:
                self.save(sync_url)                              # the task's checkpoints

        if plan.fate is Fate.QUIT:
            self._leave(exp.url, sync_url, uniqueid)
            self.market.return_assignment(assignment.assignment_id, worker_id=plan.worker_id)
            raise _Stop(Outcome.QUIT, f"left after {plan.trials_done()} trials and returned the HIT")
        if plan.fate is Fate.ABANDON:
            raise _Stop(Outcome.ABANDONED, f"stopped after {plan.trials_done()} trials with the page open")

        self._questionnaire(sync_url)
        for route in bonus_routes:                               # e.g. computeBonus('compute_bonus', ...)
            reply = self.xhr("GET", urllib.parse.urljoin(exp.url, route), params={"uniqueId": uniqueid})
            if not reply.ok and not (reply.status == 404 and self._probing):
                # psiTurk's example would leave this participant stuck; we note it and go on.
                self.result.problems.append(f"GET /{route.lstrip('/')} answered HTTP {reply.status}")
        complete_url = urllib.parse.urljoin(exp.url, "/complete?" + urllib.parse.urlencode(
            {"uniqueId": uniqueid, "mode": mode, **({"turnout_token": self.token} if self.token else {})},
            safe=":"))
        self.page(complete_url)                                  # completeHIT() -> closepopup.html
        self._submit(ad_url, uniqueid, assignment.assignment_id, turk_submit_to)

    def _load_page_assets(self, exp: Response) -> tuple[list[str], list[str]]:
        """Fetch the page's own scripts, then the pages they preload; find computeBonus routes."""
        base = urllib.parse.urlsplit(exp.url)
        routes: list[str] = []
        pages: list[str] = []
        for src in SCRIPT_SRC.findall(exp.text)[:MAX_SCRIPTS]:
            url = urllib.parse.urljoin(exp.url, html.unescape(src))
            if urllib.parse.urlsplit(url).netloc != base.netloc:
                continue  # a CDN script: a real browser would fetch it; we stay on loopback
            reply = self.get(url)
            if not reply.ok or LIB_PATH.search(urllib.parse.urlsplit(url).path):
                continue
            for route in COMPUTE_BONUS.findall(reply.text):
                if route not in routes:
                    routes.append(route)
            for name in HTML_PAGE.findall(reply.text):
                if name not in pages and not name.startswith(("http:", "https:", "/")):
                    pages.append(name)
        for name in pages[:MAX_PRELOADS]:                        # psiTurk.preloadPages(pages)
            self.xhr("GET", urllib.parse.urljoin(exp.url, name))
        if self.custom_routes is not None:
            routes = list(self.custom_routes)
        elif not routes:
            routes = ["compute_bonus"]  # psiTurk's example route; a 404 just means the project has none
            self._probing = True
        return routes, pages

    def _instructions(self, pages: Sequence[str]) -> None:
        """psiturk.js's instruction player: Begin, then one row per page viewed."""
        names = [p for p in pages if "instruct" in p] or [
            f"instructions/instruct-{i + 1}.html" for i in range(len(self.plan.instruction_ms))]
        count = len(self.plan.instruction_ms)
        shown = [names[i % len(names)] for i in range(count)]
        self.record({"phase": "INSTRUCTIONS", "templates": shown, "action": "Begin"})
        for i, view_ms in enumerate(self.plan.instruction_ms):
            self.wait(view_ms)
            self.record({"phase": "INSTRUCTIONS", "template": shown[i], "indexOf": i,
                         "action": "FinishInstructions" if i == count - 1 else "NextPage", "viewTime": view_ms})

    def _questionnaire(self, sync_url: str) -> None:
        self.save(sync_url)                                      # the end-of-test checkpoint
        self.record({"phase": "postquestionnaire", "status": "begin"})
        self.wait(self.plan.questionnaire_ms)
        self.record({"phase": "postquestionnaire", "status": "submit"})
        for key, value in self.plan.questionnaire.items():
            self.task["questiondata"][key] = value
        self.save(sync_url)

    def _leave(self, page_url: str, sync_url: str, uniqueid: str) -> None:
        """pagehide after startTask: a keepalive save, then POST quitter."""
        self.save(sync_url)
        reply = self.xhr("POST", urllib.parse.urljoin(page_url, "quitter"), form={"uniqueId": uniqueid})
        if not reply.ok:
            raise _Stop(Outcome.ERROR, f"POST /quitter answered HTTP {reply.status}")

    def _submit(self, ad_url: str, uniqueid: str, assignment_id: str, turk_submit_to: str) -> None:
        """closepopup reloads the HIT frame: the ad shows the thanks page; its button calls
        /worker_submitted and posts the externalSubmit form."""
        thanks = self.page(ad_url)
        self.wait(3000)
        submitted = self.xhr("GET", urllib.parse.urljoin(thanks.url, "/worker_submitted"),
                             params={"uniqueId": uniqueid})
        if not submitted.ok:
            raise _Stop(Outcome.ERROR, f"GET /worker_submitted answered HTTP {submitted.status}")
        form = parse_form(thanks.text)
        action, fields = form if form else ("", {})
        target = urllib.parse.urljoin(thanks.url, action) if action else ""
        if not target or not is_loopback_url(target):
            # A template that posts to mturk.com outside local mode: use turkSubmitTo, as MTurk's contract says.
            target = turk_submit_to.rstrip("/") + "/mturk/externalSubmit"
        fields.setdefault("assignmentId", assignment_id)
        self._count("POST", target)
        reply = self.browser.post_form(target, fields)
        status = getattr(self.market.assignment(assignment_id), "status", None)
        if status != "Submitted" and status not in ("Approved", "Rejected"):
            raise _Stop(Outcome.ERROR, f"externalSubmit to {target} answered HTTP {reply.status}; "
                                       f"the assignment is {status}")
        self.result.outcome = Outcome.SUBMITTED
        self.result.detail = "finished and submitted"


def run_workers(plans: Iterable[Plan], marketplace: WorkerMarketplace, **options: Any) -> Report:
    """Send the planned workers one after another (so a seeded run is reproducible)."""
    results = []
    for plan in plans:
        result = SimulatedWorker(plan, marketplace, **options).run()
        log.info("simulated worker %s (%s): %s %s", plan.worker_id, plan.fate.value, result.outcome, result.detail)
        results.append(result)
    return Report(results)
