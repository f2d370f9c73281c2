"""The save path's shortcuts give the same answers as the slow checks they skip."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    select,
    update,
)

from turnout.datastring import may_overflow as _may_overflow
from turnout.datastring import parse_sync_body
from turnout.db.engine import DriverStatement
from turnout.errors import InvalidInput


@pytest.mark.parametrize("body", [b'{"a":1e999}', b'{"a":[-1E+400]}', b'{"a":' + b"9" * 320 + b".5}",
                                  b'{"a":' + b"9" * 250 + b".0e70}", b'{"a":{"b":1e+0309}}'])
def test_overflowing_numbers_are_still_refused(body: bytes) -> None:
    assert _may_overflow(body)
    with pytest.raises(InvalidInput):
        parse_sync_body(body)


@pytest.mark.parametrize("body", [b'{"a":1e99,"b":1.5e-400,"c":123456789.25}', b'{"rt":1461.2999999523163}'])
def test_ordinary_numbers_skip_the_walk_and_are_accepted(body: bytes) -> None:
    assert not _may_overflow(body)
    assert parse_sync_body(body)[0] == body.decode()


def test_driver_statement_matches_core_on_sqlite() -> None:
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("id", String, primary_key=True), Column("n", Integer))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": "a", "n": 1}, {"id": "b", "n": 5}])
        read = DriverStatement(select(table.c.n).where(table.c.id == bindparam("uid")))
        write = DriverStatement(update(table).where(table.c.id == bindparam("uid"), table.c.n <= bindparam("v"))
                                .values(n=bindparam("v")))
        assert read.first(conn, {"uid": "b"}) == (5,)
        assert read.first(conn, {"uid": "zz"}) is None
        assert write.rowcount(conn, {"uid": "b", "v": 3}) == 0  # the guard refuses a smaller value
        assert write.rowcount(conn, {"uid": "a", "v": 3}) == 1
        assert conn.execute(select(table.c.n).order_by(table.c.id)).scalars().all() == [3, 5]
