"""`turnout export`: psiTurk's download_datafiles layout, filters, JSON Lines, streaming."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from servers import turnout_cli
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
    counts = export(db, tmp_path, codeversion="1.0", mode="sandbox").counts
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
    counts = export(study.extensions["turnout"].db, tmp_path).counts
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
    db = study.extensions["turnout"].db
    counts = export(db, tmp_path, fmt="json", codeversion="1.0", mode="sandbox").counts
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
    result = turnout_cli(project_dir, "export", "--out", str(out),
                                       "--codeversion", "1.0", "--mode", "sandbox")
    assert result.exit_code == 0, result.output
    assert f"{out / 'trialdata.csv'}: 3 rows" in result.output
    assert f"{out / 'questiondata.csv'}: 3 rows" in result.output
    assert len(read_csv(out / "eventdata.csv")) == 3


def test_cli_export_of_a_database_without_participants_table_is_one_line(project_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = turnout_cli(project_dir, "export", "--out", str(tmp_path / "out"))
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
    result = turnout_cli(project_dir, "export", "--out", str(blocker / "sub"))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "cannot write" in result.output


# --- what psiTurk databases hold: the export never dies and never leaves partial files --------

BAD_DATASTRINGS = {
    "WSUR:A": '{"questiondata": {"s": "\\ud800"}, "data": [{"current_trial": 0, "trialdata": {"t": "\\udfff"}}]}',
    "WNAN:A": '{"questiondata": {"n": NaN, "i": -Infinity}, "data": [{"current_trial": 0, "trialdata": {"x": NaN}}]}',
    "WBIG:A": '{"questiondata": {"big": 1e999}}',
    "WJNK:A": '{"questiondata": {"half": ',
    "WDEEP:A": '{"questiondata": {"d": ' + "[" * 5000 + "]" * 5000 + "}}",
}


@pytest.fixture
def hostile(db_app) -> Any:
    """One good participant and rows a psiTurk database may hold, inserted directly."""
    db = db_app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        session.add(P(uniqueid="WOK:A", workerid="WOK", assignmentid="A", hitid="H0", status=3, mode="sandbox",
                      codeversion="1.0", datastring=json.dumps({"questiondata": {"ok": "yes"}})))
        for uid, text in BAD_DATASTRINGS.items():
            worker, assignment = uid.split(":")
            session.add(P(uniqueid=uid, workerid=worker, assignmentid=assignment, hitid="H0", status=3,
                          mode="sandbox", codeversion="1.0", datastring=text))
    return db


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_survives_what_a_psiturk_database_holds(hostile, tmp_path: Path, fmt: str) -> None:
    result = export(hostile, tmp_path, fmt=fmt)
    assert sorted(result.unreadable) == ["WDEEP:A", "WJNK:A"]
    suffix = "csv" if fmt == "csv" else "jsonl"
    text = (tmp_path / f"questiondata.{suffix}").read_bytes().decode("utf-8")  # valid UTF-8
    if fmt == "csv":
        rows = read_csv(tmp_path / "questiondata.csv")
        assert ["WOK:A", "ok", "yes"] in rows
        assert ["WSUR:A", "s", "\\ud800"] in rows  # written escaped, not a crash
        assert ["WNAN:A", "n", ""] in rows and ["WBIG:A", "big", ""] in rows
    else:
        records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
        assert {"uniqueid": "WNAN:A", "question": "n", "answer": None} in records
        trials = (tmp_path / "trialdata.jsonl").read_text(encoding="utf-8")
        assert "NaN" not in trials
        assert [json.loads(line)["trialdata"] for line in trials.splitlines()] == [{"x": None}, {"t": "\udfff"}]
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_export_of_hostile_rows_names_the_unreadable_ones_without_a_traceback(
        hostile, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DATABASE_URL", hostile.engine.url.render_as_string(hide_password=False))
    result = turnout_cli(project_dir, "export", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "left out 2 participants whose stored data is not readable" in result.output
    assert "WDEEP:A" in result.output and "WJNK:A" in result.output


def test_a_failing_export_leaves_no_partial_files_and_keeps_the_previous_ones(
        study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = study.extensions["turnout"].db
    export(db, tmp_path, codeversion="1.0", mode="sandbox")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    from turnout.services import export as module

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        yield ("WA:AA", "1.0", "sandbox", json.dumps({"questiondata": {"q": "half"}}))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "iter_datastrings", broken)
    with pytest.raises(OSError):
        export(db, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- debug runs are left out unless asked for -------------------------------------------------


@pytest.fixture
def with_debug(study, make_participant) -> Any:
    d = make_participant(study, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    d.open_exp()
    put_data(d, [{"phase": "DEBUG"}], {"q": "debug"})
    # A debug hitId with another mode is a debug run too (psiTurk decides by the hitId).
    e = make_participant(study, worker="WE", assignment="AE", hit="debugH2", mode="sandbox")
    e.open_exp()
    put_data(e, [{"phase": "DEBUG"}], {"q": "debug"})
    return study


def test_export_leaves_debug_runs_out_by_default(with_debug, tmp_path: Path) -> None:
    result = export(with_debug.extensions["turnout"].db, tmp_path)
    ids = {row[0] for row in read_csv(tmp_path / "trialdata.csv")}
    assert ids == {"WA:AA", "WB:AB", "WL:AL", "WOLD:AOLD"}
    assert result.debug_left_out == 2 and not result.debug_included


def test_include_debug_exports_them_in_the_same_layout(with_debug, tmp_path: Path) -> None:
    result = export(with_debug.extensions["turnout"].db, tmp_path, include_debug=True)
    rows = read_csv(tmp_path / "trialdata.csv")
    assert {row[0] for row in rows} == {"WA:AA", "WB:AB", "WL:AL", "WOLD:AOLD", "debugW:debugA", "WE:AE"}
    assert all(len(row) == 4 for row in rows)
    assert result.counts["trialdata"] == 7


def test_mode_debug_exports_the_debug_runs(with_debug, tmp_path: Path) -> None:
    export(with_debug.extensions["turnout"].db, tmp_path, mode="debug")
    assert [row[0] for row in read_csv(tmp_path / "trialdata.csv")] == ["debugW:debugA"]


def test_cli_export_says_how_many_debug_runs_it_left_out(with_debug, project_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_debug.extensions["turnout"].db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TURNOUT_DATABASE_URL", url)
    out = tmp_path / "out"
    result = turnout_cli(project_dir, "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "left out 2 debug participants with data (pass --include-debug to export them)" in result.output
    assert "debugW:debugA" not in (out / "trialdata.csv").read_text(encoding="utf-8")
    again = turnout_cli(project_dir, "export", "--out", str(out), "--include-debug")
    assert again.exit_code == 0, again.output
    assert "debug participants" not in again.output
    assert "debugW:debugA" in (out / "trialdata.csv").read_text(encoding="utf-8")


def test_participant_csv_helpers_survive_data_too_deep_to_parse(app, make_participant, read_row) -> None:
    """psiTurk's get_trial_data & co. on a stored datastring nested past Python's recursion
    limit give empty CSV, not a RecursionError (a 500 in a custom.py route)."""
    db = app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        session.add(P(uniqueid="WDEEP:ADEEP", workerid="WDEEP", assignmentid="ADEEP", hitid="H",
                      mode="sandbox", status=3, datastring="[" * 100_000 + "]" * 100_000))
    row = read_row(app, "WDEEP:ADEEP")
    assert (row.get_trial_data(), row.get_event_data(), row.get_question_data()) == ("", "", "")


def test_rows_excluded_by_reconciliation_are_left_out_unless_asked(study, project_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    db = study.extensions["turnout"].db
    X = db.models.Exclusion
    with db.begin() as session:
        session.add(X(study=db.tables.participants, uniqueid="WB:AB", assignment_id="AB", reason="duplicate",
                      actor="test", at=datetime.now(UTC)))
    left = export(db, tmp_path / "a")
    assert "WB:AB" not in {row[0] for row in read_csv(left.files["questiondata"])}
    assert left.excluded_left_out == 1
    both = export(db, tmp_path / "b", include_excluded=True)
    assert "WB:AB" in {row[0] for row in read_csv(both.files["questiondata"])}
    assert both.excluded_left_out == 0
    monkeypatch.setenv("TURNOUT_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    shown = turnout_cli(project_dir, "export", "--out", str(tmp_path / "c"))
    assert shown.exit_code == 0, shown.output
    assert "left out 1 participants excluded by reconciliation (pass --include-excluded" in shown.output
