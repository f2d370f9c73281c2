"""HIT services against the offline marketplace: the request psiTurk would send (with its
bugs fixed), idempotent creates, study scoping, delete and extend rules, repeat workers."""

from __future__ import annotations

import pytest

from turnout.errors import InvalidInput, TurnoutError
from turnout.services import hits, payments

from .conftest import Recruiting


@pytest.fixture(params=["sqlite"])
def shared_database_url(request: pytest.FixtureRequest, shared_sqlite_url: str) -> str:
    """HIT rules do not depend on the database; the ledger tests cover every backend."""
    return shared_sqlite_url


def test_create_sends_psiturks_request_with_annotation_and_records_it(recruiting: Recruiting) -> None:
    r = recruiting
    req, blk = (r.ctx.client.create_qualification_type(Name=name, Description=name, QualificationTypeStatus="Active")
                ["QualificationType"]["QualificationTypeId"] for name in ("required", "blocked"))
    created = hits.create_hit(r.ctx, max_assignments=3, reward="0.75", duration_hours=0.5,
                              require_qualification_ids=[req], block_qualification_ids=[blk])
    hit = r.ctx.client.get_hit(HITId=created["hit_id"])["HIT"]
    assert [q["QualificationTypeId"] for q in hit["QualificationRequirements"]] == [
        hits.PERCENT_APPROVED, hits.NUMBER_APPROVED, hits.LOCALE, req, blk]
    assert [q["Comparator"] for q in hit["QualificationRequirements"]] == [
        "GreaterThanOrEqualTo", "GreaterThanOrEqualTo", "EqualTo", "Exists", "DoesNotExist"]
    assert (hit["Title"], hit["Reward"], hit["AssignmentDurationInSeconds"], hit["MaxAssignments"]) == (
        "Test study", "0.75", 1800, 3)
    assert hit["RequesterAnnotation"].startswith("turnout study=assignments codeversion=1.0")
    assert "<ExternalURL>http://127.0.0.1:22362/pub?mode=local</ExternalURL><FrameHeight>600</FrameHeight>" \
        in hit["Question"]
    with r.db.begin() as session:
        assert session.get(r.db.models.Hit, created["hit_id"]) is not None  # psiTurk's amt_hit
        (record,) = session.query(r.db.models.HitRecord).all()
        assert (record.state, record.mode, record.codeversion, record.reward, record.max_assignments) == (
            "created", "local", "1.0", "0.75", 3)


def test_create_after_lost_response_with_same_key_posts_one_hit(recruiting: Recruiting) -> None:
    r = recruiting
    r.state.add_fault("CreateHIT", "drop_response")
    with pytest.raises(TurnoutError, match="Re-run with request key round-1"):
        hits.create_hit(r.ctx, max_assignments=2, reward="1.00", duration_hours=1, request_key="round-1")
    again = hits.create_hit(r.ctx, max_assignments=2, reward="1.00", duration_hours=1, request_key="round-1")
    third = hits.create_hit(r.ctx, max_assignments=2, reward="1.00", duration_hours=1, request_key="round-1")
    assert len(r.ctx.client.list_hits()["HITs"]) == 1
    assert again["hit_id"] == third["hit_id"] == r.ctx.client.list_hits()["HITs"][0]["HITId"]
    assert third["repeat"] is True


def test_list_is_scoped_to_the_study_unless_all_studies(recruiting: Recruiting) -> None:
    r = recruiting
    mine = r.create_hit(assignments=2)
    other = r.ctx.client.create_hit(Title="someone else's", Description="d", Reward="0.10",
                                    AssignmentDurationInSeconds=600, LifetimeInSeconds=600,
                                    Question=hits.external_question("https://example.org/x"))["HIT"]["HITId"]
    assert [h["hitid"] for h in hits.list_hits(r.ctx)] == [mine]
    assert {h["hitid"] for h in hits.list_hits(r.ctx, all_studies=True)} == {mine, other}
    (view,) = hits.list_hits(r.ctx, active=True)
    assert view["number_submissions_needing_action"] == 0
    assert hits.list_hits(r.ctx, reviewable=True) == []


def test_delete_explains_what_stands_in_the_way(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    (first,) = hits.delete_hits(r.ctx, [hit_id])
    assert not first["ok"] and "expire it first" in first["message"]
    hits.expire_hits(r.ctx, [hit_id])
    (second,) = hits.delete_hits(r.ctx, [hit_id])
    assert not second["ok"] and "1 submitted assignment" in second["message"]
    payments.approve(r.ctx, [a.assignment_id])
    (third,) = hits.delete_hits(r.ctx, [hit_id])
    assert third["ok"]


def test_extend_refuses_under_ten_to_ten_or_more_before_calling(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=9)
    with pytest.raises(InvalidInput, match="Add at most 0 here"):
        hits.extend_hit(r.ctx, hit_id, assignments=1)
    with pytest.raises(InvalidInput, match="say what to extend"):
        hits.extend_hit(r.ctx, hit_id)
    big = r.create_hit(assignments=10)
    assert hits.extend_hit(r.ctx, big, assignments=5)["max_assignments"] == 15


def test_block_repeat_workers_keeps_past_participants_out_of_new_hits(
        recruiting: Recruiting, make_settings) -> None:
    r = recruiting
    r.set_hit_config("block_repeat_workers", "true")
    first = r.create_hit(assignments=3)
    (a,) = r.submitted_assignments(first, 1)
    r.add_participant(a)
    payments.approve(r.ctx, [a.assignment_id])  # grants "took part" to the worker
    second = r.create_hit(assignments=3)
    requirements = r.ctx.client.get_hit(HITId=second)["HIT"]["QualificationRequirements"]
    blocks = [q for q in requirements if q["Comparator"] == "DoesNotExist"]
    assert len(blocks) == 1
    qid = blocks[0]["QualificationTypeId"]
    granted = r.ctx.client.list_workers_with_qualification_type(QualificationTypeId=qid)["Qualifications"]
    assert [q["WorkerId"] for q in granted] == [a.worker_id]
    from turnout.marketplace.local import WorkerActionRefused

    with pytest.raises(WorkerActionRefused):
        r.state.workers.accept(a.worker_id, second)
    newcomer = r.state.workers.register()
    assert r.state.workers.accept(newcomer.worker_id, second).hit_id == second


def test_config_errors_are_input_errors(recruiting: Recruiting) -> None:
    r = recruiting
    r.set_hit_config("advanced_quals_path_sandbox", "missing.json")
    with pytest.raises(InvalidInput, match="cannot read"):
        hits.build_hit_request(r.ctx, max_assignments=1, reward="1.00", duration_hours=1)
    (r.ctx.settings.project_dir / "quals.json").write_text('{"not": "a list"}')
    r.set_hit_config("advanced_quals_path_sandbox", "quals.json")
    with pytest.raises(InvalidInput, match="JSON list"):
        hits.build_hit_request(r.ctx, max_assignments=1, reward="1.00", duration_hours=1)
    for bad in ({"max_assignments": 0}, {"reward": "1.001"}, {"duration_hours": "0"}):
        args = {"max_assignments": 1, "reward": "1.00", "duration_hours": 1, **bad}
        with pytest.raises(InvalidInput):
            hits.build_hit_request(r.ctx, **args)
