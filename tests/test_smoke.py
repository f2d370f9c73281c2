def test_full_participant_flow_ends_completed_with_every_trial(db_app, make_participant, read_row):
    p = make_participant(db_app)
    assert p.open_exp().status_code == 200
    assert p.token
    assert p.save(5).json == {"status": "user data saved"}
    assert p.inexp().json == {"status": "success"}
    assert p.save(10).status_code == 200
    assert p.complete().status_code == 200
    stored = read_row(db_app, p.uniqueid)
    assert stored.status == 3
    assert stored.trial_count == 10
