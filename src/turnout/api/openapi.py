"""``GET /api/openapi.json``: the API described for scripts (OpenAPI 3.1).

Written out by hand, next to the routes; a test checks that every ``/api`` route of the
app is in it, so a new route cannot ship undocumented.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from turnout.api.blueprint import bp

_ERROR = {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JSON = {"application/json": {"schema": {"type": "object"}}}


def _op(summary: str, role: str, *, params: list[str] = (), body: dict[str, Any] | None = None,
        status: str = "200", errors: tuple[str, ...] = ("400", "401", "403"), csv: bool = False,
        path: list[str] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "description": f"Needs the {role} role (or higher).",
        "parameters": [*(_path_param(p) for p in path),
                       *({"name": p, "in": "query", "schema": {"type": "string"}} for p in params)],
        "responses": {status: {"description": "success",
                               "content": {"text/csv": {"schema": {"type": "string"}}} if csv else _JSON},
                      **{e: _ERROR for e in errors}},
    }
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


BATCH_BODY = {"type": "object", "properties": {
    "mode": {"type": "string", "enum": ["local", "sandbox", "live"]},
    "codeversion": {"type": "string", "description": "default: the project's current codeversion"},
    "preview": {"type": "boolean", "description": "true: answer {count, reward, fees, total, marketplace}, change nothing"},
    "confirm_live": {"type": "boolean", "description": "required (true) to pay in live mode"},
    "reason": {"type": "string", "description": "bonus_all only: shown to the worker"}}}
CAMPAIGN_BODY = {"type": "object", "required": ["goal", "per_round", "interval_minutes", "reward", "duration_hours"],
                 "properties": {
                     "goal": {"type": "integer"}, "per_round": {"type": "integer"},
                     "interval_minutes": {"type": "integer"}, "reward": {"type": "string", "description": "dollars"},
                     "duration_hours": {"type": "number"}, "budget": {"type": "string", "description": "dollars"},
                     "mode": {"type": "string", "enum": ["local", "sandbox", "live"]}, "codeversion": {"type": "string"},
                     "preview": {"type": "boolean", "description": "true: answer the cost with fees, change nothing"},
                     "confirm_live": {"type": "boolean", "description": "required (true) to start a live campaign"}}}
SCHEDULING_PATHS: dict[str, Any] = {
    "/api/campaigns/": {
        "get": _op("This study's campaigns, newest first; active ones with their forecast", "viewer"),
        "post": _op("Start a campaign (201; 409 if one is active for that codeversion and mode), or preview its "
                    "cost", "payer", body=CAMPAIGN_BODY, status="201", errors=("400", "401", "403", "409"))},
    "/api/campaigns/{campaign_id}": {"patch": {**_op(
        "Change the goal ({goal}) or cancel ({is_active: false, expire_hits})", "payer",
        body={"type": "object", "properties": {"goal": {"type": "integer"}, "is_active": {"type": "boolean"},
                                               "expire_hits": {"type": "boolean"}}},
        errors=("400", "401", "403", "404", "409")), "parameters": [_path_param("campaign_id")]}},
    "/api/tasks/": {
        "get": _op("Scheduled tasks and running campaigns, with next and last run; the runner's heartbeat", "viewer"),
        "post": _op("Schedule approve-all every interval_minutes (at least 30)", "payer", status="201",
                    body={"type": "object", "required": ["interval_minutes"], "properties": {
                        "kind": {"type": "string", "enum": ["approve-all"]}, "interval_minutes": {"type": "integer"},
                        "mode": {"type": "string"}, "codeversion": {"type": "string"},
                        "confirm_live": {"type": "boolean"}}}, errors=("400", "401", "403", "409"))},
    "/api/tasks/{task_id}": {"delete": {**_op("Remove a scheduled task", "payer", errors=("400", "401", "403", "404")),
                                        "parameters": [_path_param("task_id")]}},
}
TABLE_PARAMS = ["mode", "cond", "codeversion", "complete", "status", "q", "sort", "group_by", "page", "per_page"]


FIX_BODY = {"type": "object", "required": ["assignment_id", "remedy"], "properties": {
    "assignment_id": {"type": "string"},
    "remedy": {"type": "string", "enum": ["approve", "reject", "pay_bonus", "sync_local", "exclude"]},
    "reason": {"type": "string", "description": "reject: told to the worker; pay_bonus: the bonus message"},
    "mode": {"type": "string", "enum": ["local", "sandbox", "live"]},
    "preview": {"type": "boolean", "description": "true: answer {amount, fee, total, marketplace, what}, change nothing"},
    "confirm_live": {"type": "boolean", "description": "required (true) for approve, reject, pay_bonus in live mode"}}}
# Issue 10 (reconciliation); kept apart so other branches' entries merge cleanly.
RECONCILIATION_PATHS: dict[str, Any] = {
    "/api/reconciliation": {"get": _op(
        'Compare now: {"checked", "differences": [{"assignment_id", "worker_id", "hit_id", "kind", '
        '"local_status", "marketplace_status", "detail", "remedies"}], "counts", ...}', "viewer",
        params=["mode", "codeversion"], errors=("400", "401", "403", "503"))},
    "/api/reconciliation/checks": {"post": _op(
        "Start the comparison in the background: 202 {run_id, already_running}", "viewer",
        body={"type": "object", "properties": {"mode": {"type": "string"}, "codeversion": {"type": "string"}}},
        status="202")},
    "/api/reconciliation/checks/{run_id}": {"get": {**_op(
        "A check: {state: running|done|failed|interrupted, hits_done, hits_total, report}", "viewer",
        errors=("401", "403", "404")), "parameters": [_path_param("run_id")]}},
    "/api/reconciliation/last": {"get": _op(
        "The last stored check (with its report) and any check running; no marketplace call", "viewer",
        params=["mode"])},
    "/api/reconciliation/fix": {"post": _op(
        "Apply one remedy to one assignment (or preview it); 409 when the remedy does not fit", "payer",
        body=FIX_BODY, errors=("400", "401", "403", "404", "409"))},
}

ROLE_ENUM = {"type": "string", "enum": ["viewer", "payer", "admin"]}
# Settings -> Accounts (admins only), and the CSV twins of the Campaigns, Tasks and Reconcile
# pages; kept apart so other branches' entries merge cleanly.
ACCOUNT_PATHS: dict[str, Any] = {
    "/api/accounts/": {
        "get": _op('Lab accounts: {"accounts": [{"username", "role", "source": "config"|"database", '
                   '"created_at"}]}', "admin"),
        "post": _op('Add an account (201 {"username", "role", "source"}); without "password" one is generated '
                    'and returned once as "password". 409 if the name exists', "admin", status="201",
                    body={"type": "object", "required": ["username", "role"], "properties": {
                        "username": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"}, "role": ROLE_ENUM,
                        "password": {"type": "string", "minLength": 8}}},
                    errors=("400", "401", "403", "409"))},
    "/api/accounts/{username}": {
        "patch": _op("Change an account's role; 409 for the config login, your own account or the last admin",
                     "admin", body={"type": "object", "required": ["role"], "properties": {"role": ROLE_ENUM}},
                     errors=("400", "401", "403", "404", "409"), path=["username"]),
        "delete": _op("Remove an account (its sessions end); 409 for the config login, your own account or the "
                      "last admin", "admin", errors=("401", "403", "404", "409"), path=["username"])},
    "/api/tokens/": {
        "get": _op('API tokens: {"tokens": [{"id", "name", "role", "prefix", "created_at", "last_used_at", '
                   '"revoked"}]}', "admin"),
        "post": _op('Create a token: 201 with "token", shown this once (stored only as a hash)', "admin",
                    status="201", body={"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"},
                        "role": {**ROLE_ENUM, "default": "viewer"}}})},
    "/api/campaigns.csv": {"get": _op("The Campaigns page's rows as CSV", "viewer", csv=True)},
    "/api/tasks.csv": {"get": _op("The Tasks page's rows (running campaigns too) with their last run, as CSV",
                                  "viewer", csv=True)},
    "/api/reconciliation/last.csv": {"get": _op("Every difference of the last stored check (caller's mode) as CSV",
                                                "viewer", csv=True)},
    "/api/tokens/{token_id}": {
        "delete": _op("Revoke a token by its id", "admin", errors=("400", "401", "403", "404"),
                      path=["token_id"])},
}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/openapi.json": {"get": _op("This document", "none (public)", errors=())},
        "/api/services_manager": {
            "get": _op("The caller's mode, codeversion and account balance (cached a minute)", "viewer"),
            "post": _op("Set the caller's own mode (kept in their session)", "viewer",
                        body={"type": "object", "required": ["mode"],
                              "properties": {"mode": {"type": "string", "enum": ["local", "sandbox", "live"]}}})},
        "/api/overview": {"get": _op("Funnel, per-condition counts, completions per day, money", "viewer",
                                     params=["codeversion"])},
        "/api/participants": {"get": _op(
            "The participant table: {total, page, per_page, rows, facets, groups}", "viewer", params=TABLE_PARAMS)},
        "/api/participants.csv": {"get": _op("The same rows (every page) as CSV, streamed", "viewer",
                                             params=TABLE_PARAMS[:8], csv=True)},
        "/api/participants/action/{action}": {"post": {**_op(
            "approve, reject, unreject or bonus the participants a table filter (query string) shows: preview, "
            "or start a background batch", "payer", body=BATCH_BODY, status="202"),
            "parameters": [_path_param("action"), *({"name": p, "in": "query", "schema": {"type": "string"}}
                                                    for p in TABLE_PARAMS[:6])]}},
        "/api/participants/{uniqueid}": {"get": {**_op("One participant with data, status history, ledger",
                                                       "viewer", errors=("401", "403", "404")),
                                                 "parameters": [_path_param("uniqueid")]}},
        "/api/participants/{uniqueid}/{kind}.csv": {"get": {**_op(
            "One participant's trialdata, eventdata or questiondata as CSV (turnout export's layout, no header)",
            "viewer", errors=("401", "403", "404"), csv=True),
            "parameters": [_path_param("uniqueid"), _path_param("kind")]}},
        "/api/assignments/": {"get": _op("This study's assignments from the marketplace, joined with local rows",
                                         "viewer", params=["status", "hit_id", "page", "per_page"])},
        "/api/assignments/action/{action}": {"post": {**_op(
            "approve_all or bonus_all (auto amounts): preview, or start a background batch", "payer",
            body=BATCH_BODY, status="202"), "parameters": [_path_param("action")]}},
        "/api/assignments/{assignment_id}/{operation}": {"post": {**_op(
            "approve, reject (feedback), unreject or bonus (amount, reason) one assignment", "payer",
            body={"type": "object"}), "parameters": [_path_param("assignment_id"), _path_param("operation")]}},
        "/api/hits/": {"get": _op("This study's HITs", "viewer", params=["status"])},
        "/api/hits.csv": {"get": _op("The HITs page's rows as CSV (status: all, active, reviewable), streamed",
                                     "viewer", params=["status"], csv=True)},
        "/api/assignments.csv": {"get": _op("The Workers page's assignments (every row) as CSV, streamed", "viewer",
                                            params=["status", "hit_id"], csv=True)},
        "/api/hits/action/{action}": {"post": {**_op(
            "expire_all, approve_all or delete_all: preview, or start a background batch", "payer",
            body=BATCH_BODY, status="202"), "parameters": [_path_param("action")]}},
        "/api/hits/{hit_id}/{operation}": {"post": {**_op(
            "expire, extend (assignments, minutes), approve_all or delete one HIT", "payer", body={"type": "object"}),
            "parameters": [_path_param("hit_id"), _path_param("operation")]}},
        "/api/batches/": {"get": _op("Recent batches of the caller's mode", "viewer")},
        "/api/batches/{batch_id}": {"get": {**_op(
            'A batch: {"state": "running"|"done", "total", "done", "skipped", "failed", "items"}', "viewer",
            errors=("401", "403", "404")), "parameters": [_path_param("batch_id")]}},
        "/api/activity": {"get": _op("The audit log, newest first", "viewer",
                                     params=["action", "mode", "outcome", "actor", "target", "before_id", "limit"])},
        "/api/activity.csv": {"get": _op("The audit log as CSV, streamed", "viewer",
                                         params=["action", "mode", "outcome", "actor", "target"], csv=True)},
    }
    paths.update(SCHEDULING_PATHS)
    paths.update(RECONCILIATION_PATHS)
    paths.update(ACCOUNT_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "turnout dashboard API", "version": "1",
                 "description": "Scripts send Authorization: Bearer <token> (turnout token create); pages use "
                                "the session cookie plus the X-CSRFToken header. Money is a decimal string."},
        "paths": paths,
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "session"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}},
    }


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(document())
