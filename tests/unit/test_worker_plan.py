"""How many gunicorn processes and threads ``turnout serve`` runs (server.worker_plan)."""

from __future__ import annotations

import pytest

from turnout.serving.launcher import SQLITE_THREADS, THREADS_PER_PROCESS, worker_class, worker_plan

PG = "postgresql://postgres@127.0.0.1:5432/test"


def test_auto_on_sqlite_is_one_process(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert worker_plan(make_settings(threads="auto")) == (1, SQLITE_THREADS)


def test_auto_on_postgresql_is_two_per_core_plus_one(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert worker_plan(make_settings(PG, threads="auto")) == (9, THREADS_PER_PROCESS)


def test_a_number_or_workers_flag_is_taken_as_given(make_settings) -> None:
    assert worker_plan(make_settings(threads="3")) == (3, SQLITE_THREADS)
    assert worker_plan(make_settings(PG, threads="3")) == (3, THREADS_PER_PROCESS)
    assert worker_plan(make_settings(threads="auto"), workers=2) == (2, SQLITE_THREADS)


def test_the_buffering_worker_is_used_with_this_gunicorn() -> None:
    assert worker_class() == "turnout.serving.gunicorn_worker.BufferedThreadWorker"
