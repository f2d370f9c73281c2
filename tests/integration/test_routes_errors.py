"""Every psiTurk error number a participant can reach, on every database.

psiTurk renders the project's error page with HTTP 200 and the number in
``<b>Error</b>: NNNN``; projects' own tests look for exactly that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

IPAD = ("Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/12.1 Mobile/15E148 Safari/604.1")
IDS = "hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox"


def _started(ctx: dict[str, Any]) -> Any:
    p = ctx["participant"]()
    p.open_exp()
    p.inexp()
    return p


def reach_1000(ctx: dict[str, Any]) -> Any:
    p = ctx["participant"]()
    p.open_exp()
    ctx["force_status"](ctx["app"], p.uniqueid, 9)  # a status no psiTurk code path sets
    return p.ad()


def reach_1008(ctx: dict[str, Any]) -> Any:
    p = _started(ctx)
    return p.open_exp()


def reach_1009(ctx: dict[str, Any]) -> Any:
    return _started(ctx).ad()


def reach_1009_after_quitting(ctx: dict[str, Any]) -> Any:
    p = _started(ctx)
    p.quitter()
    return p.ad()


def reach_1010_on_ad(ctx: dict[str, Any]) -> Any:
    ctx["participant"](assignment="A0").open_exp()
    return ctx["participant"](assignment="A9").ad()


def reach_1010_on_exp(ctx: dict[str, Any]) -> Any:
    ctx["participant"](assignment="A0").open_exp()
    return ctx["participant"](assignment="A9").open_exp()


def reach_1011(ctx: dict[str, Any]) -> Any:
    return ctx["client"].post("/quitter", data={"uniqueId": "NOBODY:NOWHERE"})


def reach_1013_on_inexp(ctx: dict[str, Any]) -> Any:
    return ctx["client"].post("/inexp", data={})


def reach_1013_on_complete(ctx: dict[str, Any]) -> Any:
    return ctx["client"].get("/complete?mode=sandbox")


def reach_1013_on_complete_without_mode(ctx: dict[str, Any]) -> Any:
    p = ctx["participant"]()
    p.open_exp()
    return p.client.get(f"/complete?uniqueId={p.uniqueid}", headers=p.headers)


def reach_1014(ctx: dict[str, Any]) -> Any:
    return ctx["client"].get(f"/ad?{IDS}", headers={"User-Agent": IPAD})


def reach_1014_msie(ctx: dict[str, Any]) -> Any:
    ua = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"
    return ctx["client"].get(f"/pub?{IDS}", headers={"User-Agent": ua})


def reach_1017(ctx: dict[str, Any]) -> Any:
    return ctx["client"].get("/complete?uniqueId=NOBODY:NOWHERE&mode=sandbox")


# Errors decided by what the database holds: checked on every backend.
DB_CASES: list[tuple[int, Callable[[dict[str, Any]], Any]]] = [
    (1000, reach_1000),
    (1008, reach_1008),
    (1009, reach_1009),
    (1009, reach_1009_after_quitting),
    (1010, reach_1010_on_ad),
    (1010, reach_1010_on_exp),
    (1011, reach_1011),
    (1013, reach_1013_on_complete_without_mode),
    (1017, reach_1017),
]

# Errors decided from the request alone, before any query: SQLite is enough.
REQUEST_CASES: list[tuple[int, Callable[[dict[str, Any]], Any]]] = [
    (1001, lambda c: c["client"].get("/ad?hitId=H1&workerId=W1&mode=sandbox")),
    (1001, lambda c: c["client"].get("/ad?assignmentId=A1&workerId=W1&mode=sandbox")),
    (1001, lambda c: c["client"].get("/pub?hitId=H1&assignmentId=A1&workerId=W1")),  # psiTurk: 400
    (1002, lambda c: c["client"].get("/consent?hitId=H1&assignmentId=A1&mode=sandbox")),
    (1002, lambda c: c["client"].get("/consent?hitId=H1&assignmentId=A1&workerId=W1")),
    (1002, lambda c: c["client"].get("/consent?hitId=H1&assignmentId=A1&workerId=W1&mode=%27;alert(1);%27")),
    (1003, lambda c: c["client"].get("/exp?hitId=H1&assignmentId=A1&workerId=W1")),
    (1003, lambda c: c["client"].get("/exp?assignmentId=A1&workerId=W1&mode=sandbox")),
    (1003, lambda c: c["client"].get("/exp?hitId=H1&assignmentId=A1&workerId=%3Cscript%3E&mode=sandbox")),
    (1013, reach_1013_on_inexp),
    (1013, reach_1013_on_complete),
    (1014, reach_1014),
    (1014, reach_1014_msie),
]


def _ids(cases: list[tuple[int, Any]]) -> list[str]:
    return [f"{n}-{getattr(f, '__name__', 'query').replace('<lambda>', 'query')}-{i}"
            for i, (n, f) in enumerate(cases)]


def _check_error_page(response: Any, number: int) -> None:
    assert response.status_code == 200
    assert f"<b>Error</b>: {number}".encode() in response.data
    assert b"lab@example.org" in response.data  # contact_email_on_error reaches the page


def _ctx(app: Any, make_participant: Any, force_status: Any) -> dict[str, Any]:
    return {"app": app, "client": app.test_client(), "force_status": force_status,
            "participant": lambda **ids: make_participant(app, **ids)}


@pytest.mark.parametrize(("number", "reach"), DB_CASES, ids=_ids(DB_CASES))
def test_error_from_stored_state_renders_numbered_page_with_http_200(db_app, make_participant, force_status,
                                                                     number: int, reach: Callable[..., Any]) -> None:
    _check_error_page(reach(_ctx(db_app, make_participant, force_status)), number)


@pytest.mark.parametrize(("number", "reach"), REQUEST_CASES, ids=_ids(REQUEST_CASES))
def test_error_from_request_renders_numbered_page_with_http_200(app, make_participant, force_status,
                                                                number: int, reach: Callable[..., Any]) -> None:
    _check_error_page(reach(_ctx(app, make_participant, force_status)), number)


@pytest.mark.parametrize("page", ["ad.html", "consent.html"])
def test_template_without_workerid_marker_gives_1020(make_app, project_file, page: str) -> None:
    project_file(f"templates/{page}", "<html><body><a href='/exp?workerId={{workerid}}'>go</a></body></html>")
    app = make_app()
    route = "/ad" if page == "ad.html" else "/consent"
    response = app.test_client().get(f"{route}?{IDS}")
    assert response.status_code == 200
    assert b"<b>Error</b>: 1020" in response.data


def test_error_page_gets_request_arguments_as_template_variables(make_app, project_file) -> None:
    project_file("templates/error.html", "<p><b>Error</b>: {{ errornum }} for {{ hitId }} ({{ errordesc }})</p>")
    app = make_app()
    response = app.test_client().get("/exp?hitId=H7&mode=sandbox")
    assert b"<b>Error</b>: 1003 for H7" in response.data


@pytest.mark.parametrize("key", ["errornum", "template_name_or_list", "contact_address", "source"])
def test_query_key_colliding_with_template_arguments_still_renders_the_error(client, key: str) -> None:
    # psiTurk answered /ad?...&errornum=5 with a 500 (weakness 9).
    response = client.get(f"/exp?hitId=H1&{key}=5")
    assert response.status_code == 200
    assert b"<b>Error</b>: 1003" in response.data
    assert b"lab@example.org" in response.data


def test_custom_route_experiment_error_renders_numbered_page(client) -> None:
    response = client.get("/compute_bonus")
    assert response.status_code == 200
    assert b"<b>Error</b>: 1013" in response.data
