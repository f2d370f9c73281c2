"""GET /api/participants (filters, facets, groups, pages), its CSV twin, and one participant."""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa


def counts_in_db(app: Any, where: Any) -> int:
    db = app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(P).where(where(P)))


def test_filters_facets_and_groups_match_the_database(dash_app: Any, browser_for, seed) -> None:
    seed(dash_app, 12, status=[3, 4, 5, 6, 1, 7], cond=[0, 1, 2], mode=["local", "sandbox"])
    seed(dash_app, 3, prefix="OLD", codeversion="0.9", status=4)
    b = browser_for(dash_app)
    body = b.get("/api/participants?complete=true&group_by=cond").get_json()
    expected = counts_in_db(dash_app, lambda P: sa.and_(P.codeversion == "1.0", P.status.in_([3, 4, 5, 7])))
    assert body["total"] == expected == 8
    assert sum(g["count"] for g in body["groups"]) == expected
    assert {g["cond"] for g in body["groups"]} == {0, 1, 2}
    assert {f["value"]: f["count"] for f in body["facets"]["codeversion"]} == {"1.0": 8, "0.9": 3}
    modes = {f["value"]: f["count"] for f in body["facets"]["mode"]}
    assert modes == {"local": counts_in_db(dash_app, lambda P: sa.and_(
        P.codeversion == "1.0", P.status.in_([3, 4, 5, 7]), P.mode == "local")), "sandbox": 4}
    assert all(set(r) >= {"uniqueid", "workerid", "assignmentid", "hitid", "status", "status_name", "cond"}
               for r in body["rows"])
    assert "datastring" not in body["rows"][0]


def test_codeversion_star_means_all_and_status_by_name(dash_app: Any, browser_for, seed) -> None:
    seed(dash_app, 4, status=4)
    seed(dash_app, 2, prefix="OLD", codeversion="0.9", status=5)
    b = browser_for(dash_app)
    assert b.get("/api/participants?codeversion=*").get_json()["total"] == 6
    assert b.get("/api/participants?codeversion=0.9").get_json()["total"] == 2
    body = b.get("/api/participants?codeversion=*&status=Approved").get_json()
    assert body["total"] == 2 and {r["status_name"] for r in body["rows"]} == {"Approved"}


def test_search_pages_and_sort(dash_app: Any, browser_for, seed) -> None:
    seed(dash_app, 7)
    b = browser_for(dash_app)
    first = b.get("/api/participants?per_page=3&sort=workerid").get_json()
    second = b.get("/api/participants?per_page=3&page=2&sort=workerid").get_json()
    assert first["total"] == 7 and len(first["rows"]) == 3
    assert [r["workerid"] for r in first["rows"]] == ["W0", "W1", "W2"]
    assert [r["workerid"] for r in second["rows"]] == ["W3", "W4", "W5"]
    found = b.get("/api/participants?q=AW5").get_json()
    assert [r["assignmentid"] for r in found["rows"]] == ["AW5"]
    assert b.get("/api/participants?q=W%25").get_json()["total"] == 0  # % is not a wildcard


def test_bad_parameters_are_400s(sqlite_dash_app: Any, browser_for) -> None:
    b = browser_for(sqlite_dash_app)
    for query in ("sort=password", "group_by=ipaddress", "page=0", "per_page=100000", "cond=x",
                  "status=Paid", "complete=maybe"):
        response = b.get(f"/api/participants?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_input"


def test_csv_streams_exactly_the_filtered_rows(dash_app: Any, browser_for, seed, monkeypatch) -> None:
    from turnout.services import participant_table

    monkeypatch.setattr(participant_table, "CSV_CHUNK", 4)  # several chunks
    seed(dash_app, 11, status=[4, 1])
    seed(dash_app, 2, prefix="OLD", codeversion="0.9")
    b = browser_for(dash_app)
    response = b.get("/api/participants.csv?complete=true")
    assert response.mimetype == "text/csv" and response.is_streamed
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    api = b.get("/api/participants?complete=true&per_page=500").get_json()
    assert sorted(r["uniqueid"] for r in rows) == sorted(r["uniqueid"] for r in api["rows"])
    assert len(rows) == 6 and {r["status_name"] for r in rows} == {"Submitted"}


def test_one_participant_with_data_history_and_ledger(sqlite_dash_app: Any, browser_for,
                                                      make_participant) -> None:
    p = make_participant(sqlite_dash_app, worker="WD", assignment="AD", hit="HD", mode="local")
    p.open_exp()
    p.save(3)
    p.inexp()
    b = browser_for(sqlite_dash_app)
    body = b.get("/api/participants/WD:AD").get_json()
    assert body["uniqueid"] == "WD:AD" and body["status_name"] == "Started"
    assert len(body["data"]["trialdata"]) == 3
    assert [h["to_name"] for h in body["history"]] == ["Allocated", "Started"]
    assert body["ledger"] == []
    missing = b.get("/api/participants/nobody")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_viewer_token_reads_the_table(sqlite_dash_app: Any, seed) -> None:
    from turnout.services import accounts

    seed(sqlite_dash_app, 2)
    st = sqlite_dash_app.extensions["turnout.dashboard"]
    _row, token = accounts.create_token(st.db, name="r", role="viewer", clock=st.clock)
    response = sqlite_dash_app.test_client().get("/api/participants",
                                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["total"] == 2


def test_one_participants_data_as_csv(sqlite_dash_app: Any, browser_for, seed) -> None:
    import json

    (uid,) = seed(sqlite_dash_app, 1)
    data = {"data": [{"current_trial": 0, "dateTime": 1, "trialdata": {"rt": 512}},
                     {"current_trial": 1, "dateTime": 2, "trialdata": {"rt": 480}}],
            "questiondata": {"engagement": "7"}, "eventdata": [{"eventtype": "focus", "interval": 0,
                                                               "value": "on", "timestamp": 3}]}
    db = sqlite_dash_app.extensions["turnout"].db
    with db.begin() as session:
        session.get(db.models.Participant, uid).datastring = json.dumps(data)
    b = browser_for(sqlite_dash_app)
    trials = b.get(f"/api/participants/{uid}/trialdata.csv")
    assert trials.status_code == 200 and trials.mimetype == "text/csv"
    assert trials.data.decode().splitlines() == [f'{uid},0,1,"{{""rt"": 512}}"', f'{uid},1,2,"{{""rt"": 480}}"']
    assert b.get(f"/api/participants/{uid}/questiondata.csv").data.decode().splitlines() == [f"{uid},engagement,7"]
    assert b.get(f"/api/participants/{uid}/eventdata.csv").data.decode().splitlines() == [f"{uid},focus,0,on,3"]
    assert b.get(f"/api/participants/{uid}").get_json()["uniqueid"] == uid  # the JSON twin still answers
    assert b.get(f"/api/participants/{uid}/secrets.csv").status_code == 404
    assert b.get("/api/participants/nobody:x/trialdata.csv").status_code == 404
    page = b.get(f"/dashboard/participants/{uid}").data.decode()
    assert f'href="/api/participants/{uid}/trialdata.csv"' in page and 'id="participant-json"' in page
