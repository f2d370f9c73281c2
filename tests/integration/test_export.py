"""`turnout export`: psiTurk's download_datafiles layout, filters, JSON Lines, streaming."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from turnout.cli import main
from turnout.services.export import export, iter_datastrings

EVENTS = [{"eventtype": "initialized", "value": None, "timestamp": 1000, "interval": 0},
          {"eventtype": "window_resize", "value": [1024, 768], "timestamp": 1200, "interval": 200},
          {"eventtype": "focus", "value": "off", "timestamp": 1500, "interval": 300}]


def put_data(p: Any, trials: list[dict[str, Any]], questions: dict[str, Any],
             events: list[dict[str, Any]] = EVENTS) -> None:
    body = {"id": p.uniqueid, "currenttrial": len(trials), "questiondata": questions, "eventdata": events,
            "data": [{"uniqueid": p.uniqueid, "current_trial": i, "dateTime": 1_700_000_000_000 + i,
                      "trialdata": t} for i, t in enumerate(trials)]}
    # Serialised here, not by the test client (which sorts keys): key order must survive.
    response = p.client.put(f"/sync/{p.uniqueid}", data=json.dumps(body), content_type="application/json",
                            headers=p.headers)
    assert response.status_code == 200


@pytest.fixture
def study(db_app, make_participant) -> Any:
    """Two sandbox participants with data, one without, one live, one of an older codeversion."""
    a = make_participant(db_app, worker="WA", assignment="AA")
    a.open_exp()
    put_data(a, [{"phase": "TEST", "word": "RED", "rt": 512}, {"phase": "TEST", "word": "BLUE", "rt": 498}],
             {"age": "31", "comments": "fine, thanks"})
    b = make_participant(db_app, worker="WB", assignment="AB")
    b.open_exp()
    put_data(b, [{"phase": "INSTRUCTIONS"}], {"engagement": "ünïcode ☃"}, events=[])
    make_participant(db_app, worker="WC", assignment="AC").open_exp()  # no data yet
    live = make_participant(db_app, worker="WL", assignment="AL", mode="live")
    live.open_exp()
    put_data(live, [{"phase": "TEST"}], {"q": "live"})
    db = db_app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        old = P(uniqueid="WOLD:AOLD", workerid="WOLD", assignmentid="AOLD", hitid="H0", status=3, mode="sandbox",
                codeversion="0.9", datastring=json.dumps({"data": [{"current_trial": 0, "dateTime": 1,
                                                                    "trialdata": {"old": True}}],
                                                          "questiondata": {}, "eventdata": []}))
        broken = P(uniqueid="WBAD:ABAD", workerid="WBAD", assignmentid="ABAD", hitid="H0", status=6,
                   mode="sandbox", codeversion="1.0", datastring="null")
        session.add_all([old, broken])
    return db_app


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_csv_files_have_psiturks_columns_and_no_header(study, tmp_path: Path) -> None:
    db = study.extensions["turnout"].db
    counts = export(db, tmp_path, codeversion="1.0", mode="sandbox")
    assert counts == {"trialdata": 3, "eventdata": 3, "questiondata": 3}
    assert read_csv(tmp_path / "trialdata.csv") == [
        ["WA:AA", "0", "1700000000000", '{"phase": "TEST", "word": "RED", "rt": 512}'],
        ["WA:AA", "1", "1700000000001", '{"phase": "TEST", "word": "BLUE", "rt": 498}'],
        ["WB:AB", "0", "1700000000000", '{"phase": "INSTRUCTIONS"}'],
    ]
    assert read_csv(tmp_path / "eventdata.csv") == [
        ["WA:AA", "initialized", "0", "", "1000"],
        ["WA:AA", "window_resize", "200", "[1024, 768]", "1200"],
        ["WA:AA", "focus", "300", "off", "1500"],
    ]
    assert read_csv(tmp_path / "questiondata.csv") == [
        ["WA:AA", "age", "31"], ["WA:AA", "comments", "fine, thanks"], ["WB:AB", "engagement", "ünïcode ☃"],
    ]


def test_csv_lines_end_as_psiturks_did(study, tmp_path: Path) -> None:
    export(study.extensions["turnout"].db, tmp_path, codeversion="1.0", mode="sandbox")
    raw = (tmp_path / "questiondata.csv").read_bytes()
    assert raw.startswith(b"WA:AA,age,31\r\nWA:AA,comments,\"fine, thanks\"\r\n")


def test_without_filters_every_participant_with_data_is_exported(study, tmp_path: Path) -> None:
    counts = export(study.extensions["turnout"].db, tmp_path)
    assert counts["trialdata"] == 5
    ids = {row[0] for row in read_csv(tmp_path / "trialdata.csv")}
    assert ids == {"WA:AA", "WB:AB", "WL:AL", "WOLD:AOLD"}


def test_mode_filter_keeps_only_that_mode(study, tmp_path: Path) -> None:
    export(study.extensions["turnout"].db, tmp_path, mode="live")
    assert [row[0] for row in read_csv(tmp_path / "trialdata.csv")] == ["WL:AL"]


def test_codeversion_filter_keeps_only_that_version(study, tmp_path: Path) -> None:
    export(study.extensions["turnout"].db, tmp_path, codeversion="0.9")
    assert read_csv(tmp_path / "trialdata.csv") == [["WOLD:AOLD", "0", "1", '{"old": true}']]
    assert read_csv(tmp_path / "questiondata.csv") == []


def test_json_format_writes_one_object_per_line_with_psiturks_keys(study, tmp_path: Path) -> None:
    counts = export(study.extensions["turnout"].db, tmp_path, fmt="json", codeversion="1.0", mode="sandbox")
    assert counts["trialdata"] == 3
    trials = [json.loads(line) for line in (tmp_path / "trialdata.jsonl").read_text().splitlines()]
    assert trials[0] == {"uniqueid": "WA:AA", "current_trial": 0, "dateTime": 1700000000000,
                         "trialdata": {"phase": "TEST", "word": "RED", "rt": 512}}
    events = [json.loads(line) for line in (tmp_path / "eventdata.jsonl").read_text().splitlines()]
    assert events[1] == {"uniqueid": "WA:AA", "eventtype": "window_resize", "interval": 200,
                         "value": [1024, 768], "timestamp": 1200}
    questions = [json.loads(line) for line in (tmp_path / "questiondata.jsonl").read_text().splitlines()]
    assert questions[-1] == {"uniqueid": "WB:AB", "question": "engagement", "answer": "ünïcode ☃"}


def test_rows_are_read_a_page_at_a_time_each_exactly_once(study) -> None:
    db = study.extensions["turnout"].db
    everyone = [r[0] for r in iter_datastrings(db, batch=1000)]
    paged = [r[0] for r in iter_datastrings(db, batch=2)]
    assert paged == everyone == sorted(everyone)
    assert len(everyone) == 6


def test_participant_csv_helpers_match_the_export(study, tmp_path: Path) -> None:
    # psiTurk's Participant.get_trial_data() & co., which analysis code in custom.py calls.
    db = study.extensions["turnout"].db
    export(db, tmp_path, codeversion="1.0", mode="sandbox")
    with db.begin() as session:
        a = session.get(db.models.Participant, "WA:AA")
        trial, event, question = a.get_trial_data(), a.get_event_data(), a.get_question_data()
        broken = session.get(db.models.Participant, "WBAD:ABAD").get_trial_data()
    assert (tmp_path / "trialdata.csv").read_bytes().decode("utf-8").startswith(trial)
    assert (tmp_path / "eventdata.csv").read_bytes().decode("utf-8") == event
    assert (tmp_path / "questiondata.csv").read_bytes().decode("utf-8").startswith(question)
    assert broken == ""


def test_cli_export_writes_files_into_out_and_reports_counts(study, project_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = study.extensions["turnout"].db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TURNOUT_DATABASE_URL", url)
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["-C", str(project_dir), "export", "--out", str(out),
                                       "--codeversion", "1.0", "--mode", "sandbox"])
    assert result.exit_code == 0, result.output
    assert f"{out / 'trialdata.csv'}: 3 rows" in result.output
    assert f"{out / 'questiondata.csv'}: 3 rows" in result.output
    assert len(read_csv(out / "eventdata.csv")) == 3


def test_cli_export_of_a_database_without_participants_table_is_one_line(project_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(main, ["-C", str(project_dir), "export", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "turnout db upgrade" in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_export_to_an_unwritable_folder_is_one_line(project_dir: Path, tmp_path: Path, make_app,
                                                        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make_app(sqlite_url)
    monkeypatch.setenv("TURNOUT_DATABASE_URL", sqlite_url)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["-C", str(project_dir), "export", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "cannot write" in result.output
