"""The campaign round rule on every database, against the offline marketplace over HTTP.

The rules that decide what is posted (the goal, open counting, the budget, the crash
rerun, the one-active constraint) run on all three databases; the other cases on SQLite,
to keep the suite short. Workers here accept and submit through the marketplace's worker side and get the local row
a finished participant has; the end-to-end test with simulated workers walking the study
over HTTP is in test_campaign_e2e.py. Time is a ManualClock: rounds 30 minutes apart take
no wall-clock time.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from turnout.errors import Conflict, InvalidInput
from turnout.services import campaigns

from .conftest import Killed, Sched, deliver_then_die

pytestmark = pytest.mark.db

ROUND = timedelta(minutes=30)


def sizes(s: Sched, campaign_id: int) -> list[int]:
    return [h.assignments for h in s.campaign_hits(campaign_id)]


def test_split_never_makes_an_empty_or_a_ten_assignment_hit():
    assert campaigns.split(10) == [9, 1]
    assert campaigns.split(9) == [9]
    assert campaigns.split(25) == [9, 9, 7]
    assert campaigns.split(0) == [] and campaigns.split(-13) == []


def test_goal_25_in_rounds_of_10_completes_exactly_25_and_ends_by_itself(sched: Sched):
    s = sched
    c = s.create(goal=25, per_round=10)
    first = s.round(c["id"])
    assert (first.outcome, first.posted) == ("posted", [9, 1])
    assert s.round(c["id"]).outcome == "skipped"  # not due again for 30 minutes
    for _ in range(10):
        s.fill_open(c["id"])
        s.clock.advance(ROUND)
        if s.round(c["id"]).outcome == "ended":
            break
    assert s.completed() == 25
    assert sum(sizes(s, c["id"])) == 25  # nothing posted beyond the goal
    assert all(0 < n <= 9 for n in sizes(s, c["id"]))
    view = campaigns.get(s.db, c["id"])
    assert view["active"] is False and view["end_reason"].startswith("goal reached: 25 of 25")
    assert view["rounds"] == 3 and view["spent"] == "30.00"  # 25 x ($1.00 + 20%)


def test_leftover_hits_are_expired_when_the_goal_is_met(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=12, per_round=12)
    s.round(c["id"])  # 9 + 3
    s.fill_open(c["id"], limit=9)
    # three more finish outside the campaign's HITs (e.g. an old HIT): the goal is met
    other = s.ctx()
    from turnout.services import hits

    extra = hits.create_hit(other, max_assignments=3, reward="1.00", duration_hours=1)["hit_id"]
    s.complete(extra, 3)
    s.clock.advance(ROUND)
    result = s.round(c["id"])
    assert result.outcome == "ended" and "expired 1 leftover HIT" in result.note
    leftover = [h for h in s.campaign_hits(c["id"]) if h.assignments == 3][0]
    assert s.state.get_hit(leftover.hit_id).status != "Assignable"
    assert s.completed() == 12


def test_open_counts_only_the_campaigns_own_hits_and_never_previews(sched: Sched):
    s = sched
    from turnout.services import hits

    unrelated = hits.create_hit(s.ctx(), max_assignments=5, reward="1.00", duration_hours=1)["hit_id"]
    c = s.create(goal=20, per_round=5)
    first = s.round(c["id"])
    assert first.posted == [5]  # the unrelated HIT's 5 free slots did not suppress posting
    (hit,) = s.campaign_hits(c["id"])
    side = s.state.workers
    for _ in range(3):  # three previewers: MTurk counts them in NumberOfAssignmentsPending
        side.preview(side.register().worker_id, hit.hit_id)
    accepted = side.accept(side.register().worker_id, hit.hit_id)  # one at work
    s.complete(hit.hit_id, 1)  # one finished
    assert unrelated
    s.clock.advance(ROUND)
    second = s.round(c["id"])
    # open: 5 - 1 submitted = 4 (3 free + 1 accepted); previews changed nothing
    assert (second.completed, second.open, second.posted) == (1, 4, [5])
    side.return_assignment(accepted.assignment_id)
    s.clock.advance(ROUND)
    third = s.round(c["id"])
    # 4 + the second round's 5: the returned slot is free again, so it stays open
    assert (third.completed, third.open, third.posted) == (1, 9, [5])


def test_a_participant_finished_but_not_yet_submitted_is_not_counted_twice(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=10, per_round=2)
    s.round(c["id"])
    (hit,) = s.campaign_hits(c["id"])
    side = s.state.workers
    worker = side.register()
    a = side.accept(worker.worker_id, hit.hit_id)  # took the HIT, finished the task, not submitted yet
    P = s.db.models.Participant
    with s.db.begin() as session:
        session.add(P(uniqueid=f"{worker.worker_id}:{a.assignment_id}", assignmentid=a.assignment_id,
                      workerid=worker.worker_id, hitid=hit.hit_id, codeversion="1.0", mode="local", status=3))
    s.clock.advance(ROUND)
    result = s.round(c["id"])
    assert (result.completed, result.open) == (1, 1)  # completed once, and only the free slot is open


def test_never_overshoots_when_open_assignments_cover_the_goal(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=5, per_round=10)
    assert s.round(c["id"]).posted == [5]
    s.clock.advance(ROUND)
    second = s.round(c["id"])
    assert (second.outcome, second.posted, second.open) == ("nothing", [], 5)
    assert len(s.market_hits()) == 1  # psiTurk posted num_workers=-13 here (§10 item 3)


def test_a_budget_stops_posting_before_it_would_be_exceeded(sched: Sched):
    s = sched
    c = s.create(goal=20, per_round=10, budget="15.00")
    assert s.round(c["id"]).posted == [9, 1]  # $12.00 with fees
    s.fill_open(c["id"])
    s.clock.advance(ROUND)
    assert s.round(c["id"]).posted == [2]  # $3.00 left: two at $1.20
    s.fill_open(c["id"])
    s.clock.advance(ROUND)
    last = s.round(c["id"])
    assert last.outcome == "ended" and "budget reached ($14.40 of $15.00" in last.note
    view = campaigns.get(s.db, c["id"])
    assert Decimal(view["spent"]) <= Decimal("15.00") and view["completed"] == 12
    assert sum(h.max_assignments for h in s.market_hits()) == 12


def test_a_round_cut_short_by_a_crash_posts_nothing_twice(sched: Sched):
    s = sched
    c = s.create(goal=30, per_round=18)
    calls: list[int] = []
    s.client_hook = lambda client: calls.extend(deliver_then_die(client, "CreateHIT", on_call=2) and [])
    with pytest.raises(Killed):
        s.round(c["id"])  # the second HIT reached the marketplace; the process died before its answer
    s.client_hook = None
    assert len(s.market_hits()) == 2
    assert [h.hit_id is not None for h in s.campaign_hits(c["id"])] == [True, False]
    resumed = s.round(c["id"])  # the restarted runner, at once (not waiting for the interval)
    assert resumed.outcome == "resumed" and resumed.posted == [9]
    assert len(s.market_hits()) == 2  # the same HIT, found by its UniqueRequestToken
    assert sorted(h.max_assignments for h in s.market_hits()) == [9, 9]
    assert {h.hit_id for h in s.campaign_hits(c["id"])} == {h.hit_id for h in s.market_hits()}
    (only,) = campaigns.rounds(s.db, c["id"])
    assert (only["state"], only["posted"]) == ("done", 18)
    assert s.round(c["id"]).outcome == "skipped"


def test_two_runners_on_one_round_post_it_once(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=9, per_round=9)
    first, second = s.round(c["id"]), s.round(c["id"], force=True)
    assert first.posted == [9] and second.outcome in ("nothing", "skipped")
    assert len(s.market_hits()) == 1


def test_cancel_stops_posting_and_can_expire_the_open_hits(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=30, per_round=10)
    s.round(c["id"])
    campaigns.cancel(s.db, s.clock, c["id"], actor="tester")
    s.clock.advance(ROUND * 4)
    assert s.round(c["id"]).outcome == "skipped"
    assert len(s.market_hits()) == 2
    expired = campaigns.expire_campaign_hits(s.ctx(), c["id"])
    assert [e["ok"] for e in expired] == [True, True]
    assert all(h.status != "Assignable" for h in s.market_hits())
    view = campaigns.get(s.db, c["id"])
    assert view["active"] is False and view["end_reason"] == "cancelled by tester"
    with pytest.raises(Conflict):
        campaigns.cancel(s.db, s.clock, c["id"])


def test_a_changed_codeversion_ends_the_campaign_visibly_and_frees_the_slot(sched_sqlite: Sched, make_settings):
    s = sched_sqlite
    c = s.create(goal=10, per_round=5)
    newer = make_settings(s.settings.database_url, launch_in_mode="local", experiment_code_version="2.0")
    result = campaigns.run_round(s.ctx(newer), c["id"])
    assert result.outcome == "ended" and "changed from 1.0 to 2.0" in result.note
    view = campaigns.get(s.db, c["id"])
    assert view["active"] is False and "changed from 1.0 to 2.0" in view["end_reason"]
    assert len(s.market_hits()) == 0
    assert s.create(goal=10, per_round=5)["active"] is True  # not blocked by an invisible active one


def test_goal_can_change_while_running_but_must_exceed_the_completed(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=5, per_round=5)
    s.round(c["id"])
    s.fill_open(c["id"])
    with pytest.raises(InvalidInput, match="must exceed the 5 participant"):
        campaigns.set_goal(s.db, c["id"], 5)
    assert campaigns.set_goal(s.db, c["id"], 8)["goal"] == 8
    s.clock.advance(ROUND)
    assert s.round(c["id"]).posted == [3]


def test_one_active_campaign_per_codeversion_and_mode_is_enforced_by_the_database(sched: Sched):
    s = sched
    c = s.create(goal=10, per_round=5)
    with pytest.raises(Conflict, match=f"campaign {c['id']} is already active"):
        s.create(goal=20, per_round=5)
    other = s.create(goal=10, per_round=5, codeversion="2.0")  # another codeversion is fine
    assert other["active"]
    C = campaigns.models(s.db).Campaign
    with pytest.raises(IntegrityError), s.db.begin() as session:  # below the service: the constraint itself
        session.add(C(study="assignments", codeversion="1.0", mode="local", goal=3, per_round=1,
                      interval_minutes=1, reward="1.00", duration_hours=1, active_key="assignments|1.0|local",
                      created_at=s.clock.now(), rounds=0))
    campaigns.cancel(s.db, s.clock, c["id"])
    campaigns.cancel(s.db, s.clock, other["id"])
    assert s.create(goal=10, per_round=5)["active"]  # ended campaigns (NULL keys) never collide
    with s.db.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(C).where(C.active_key.is_(None))) == 2


@pytest.mark.parametrize(("options", "message"), [
    ({"goal": 0}, "the goal must be at least 1"),
    ({"per_round": "x"}, "assignments per round must be a whole number"),
    ({"interval_minutes": 0}, "minutes between rounds must be at least 1"),
    ({"reward": "1.234"}, "at most two decimals"),
    ({"duration_hours": "-1"}, "more than 0 hours"),
    ({"mode": "moon"}, "mode must be one of"),
    ({"budget": "1.00"}, "does not cover one HIT of 9 assignment(s) at $1.00 ($10.80 with MTurk's fees)"),
])
def test_campaign_settings_are_refused_with_specific_errors(sched_sqlite: Sched, options, message):
    with pytest.raises(InvalidInput) as refused:
        sched_sqlite.create(**options)
    assert message in refused.value.message


def test_the_goal_must_exceed_those_already_complete(sched_sqlite: Sched):
    s = sched_sqlite
    from turnout.services import hits

    hit = hits.create_hit(s.ctx(), max_assignments=3, reward="1.00", duration_hours=1)["hit_id"]
    s.complete(hit, 3)
    with pytest.raises(InvalidInput, match="must exceed the 3 participant"):
        s.create(goal=3)
    assert s.create(goal=4)["completed"] == 3


def test_forecast_projects_eta_and_cost_from_the_recent_rate(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=20, per_round=10)
    s.round(c["id"])
    s.clock.advance(timedelta(hours=1))
    s.fill_open(c["id"], limit=5)
    found = campaigns.forecast(s.db, s.settings, s.clock, c["id"])
    assert found["remaining"] == 15 and found["rate_per_hour"] == 5.0
    assert found["eta"] == (s.clock.now() + timedelta(hours=3)).isoformat()
    # 12.00 committed; 15 remaining minus 5 open = 10 more in HITs of 9 + 1 = 12.00
    assert (found["spent"], found["to_commit"], found["total_cost"]) == ("12.00", "12.00", "24.00")


def test_a_hit_deleted_on_the_marketplace_is_closed_not_fatal(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=10, per_round=5)
    s.round(c["id"])
    H = campaigns.models(s.db).CampaignHit
    with s.db.begin() as session:  # as if `turnout hit delete` had removed it after review
        session.execute(sa.update(H).values(hit_id="3DELETEDHIT00000000000000000"))
    s.clock.advance(ROUND)
    result = s.round(c["id"])
    assert (result.outcome, result.open, result.posted) == ("posted", 0, [5])
    assert [h.closed_at is not None for h in s.campaign_hits(c["id"])] == [True, False]


def test_a_cancel_during_a_round_stops_its_remaining_hits(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=30, per_round=27)

    def cancel_after_first_create(client) -> None:
        def after(**_) -> None:
            campaigns.cancel(s.db, s.clock, c["id"])
        client.meta.events.register("after-call.mturk.CreateHIT", after)

    s.client_hook = cancel_after_first_create
    result = s.round(c["id"])
    assert result.posted == [9] and "campaign ended while posting" in result.note
    assert len(s.market_hits()) == 1
    assert campaigns.get(s.db, c["id"])["spent"] == "10.80"  # the two HITs never posted are not committed


def test_campaign_decisions_are_audited(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=10, per_round=5)
    campaigns.set_goal(s.db, c["id"], 12, clock=s.clock, actor="ana")
    campaigns.cancel(s.db, s.clock, c["id"], actor="ana")
    A = s.db.models.AuditEvent
    with s.db.begin() as session:
        rows = session.execute(sa.select(A.action, A.actor, A.target).order_by(A.id)).all()
    assert [tuple(r) for r in rows] == [("campaign.create", "test", f"campaign-{c['id']}"),
                                        ("campaign.goal", "ana", f"campaign-{c['id']}"),
                                        ("campaign.cancel", "ana", f"campaign-{c['id']}")]
