from conftest import Participant, row


def test_full_participant_flow_ends_completed_with_every_trial(db_app):
    p = Participant(db_app.test_client())
    assert p.open_exp().status_code == 200
    assert p.token
    assert p.save(5).json == {"status": "user data saved"}
    assert p.inexp().json == {"status": "success"}
    assert p.save(10).status_code == 200
    assert p.complete().status_code == 200
    stored = row(db_app, p.uniqueid)
    assert stored.status == 3
    assert stored.trial_count == 10
