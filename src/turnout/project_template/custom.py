"""This study's own server routes.

The server loads this file at start-up and registers the Flask blueprint named
``custom_code``. The ``psiturk`` imports below are provided by turnout, so a psiTurk
project's custom.py keeps working.

The route here computes each participant's bonus from their saved data and stores it in
the participant's ``bonus`` column; task.js calls it (through psiTurk.computeBonus) just
before finishing. That column is the amount paid when bonuses are paid automatically,
as in psiTurk.
"""

import json

from flask import Blueprint, abort, jsonify, request
from psiturk.db import db_session
from psiturk.experiment_errors import ExperimentError
from psiturk.models import Participant

custom_code = Blueprint("custom_code", __name__)

BONUS_PER_CORRECT = 0.02   # dollars for each correct answer in the test block
BONUSED = 7                # psiTurk's status for "bonus already paid"


def count_correct_test_trials(datastring):
    """How many TEST trials in a participant's saved data were answered correctly.

    The participant's browser wrote that data, so anything else than psiturk.js's usual
    shape (records that are not objects, "data" that is not a list) counts as no correct
    trials instead of ending the request in an error.
    """
    try:
        data = json.loads(datastring or "{}")
    except (ValueError, RecursionError):
        return 0
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        return 0
    correct = 0
    for record in records:
        trial = record.get("trialdata") if isinstance(record, dict) else None
        if isinstance(trial, dict) and trial.get("phase") == "TEST" and trial.get("hit") is True:
            correct += 1
    return correct


@custom_code.route("/compute_bonus", methods=["GET"])
def compute_bonus():
    unique_id = request.args.get("uniqueId")
    if not unique_id:
        raise ExperimentError("improper_inputs")

    participant = Participant.query.filter(Participant.uniqueid == unique_id).one_or_none()
    if participant is None:
        abort(404)

    bonus = round(BONUS_PER_CORRECT * count_correct_test_trials(participant.datastring), 2)
    # Once a bonus has been paid, the amount on record must keep matching the payment.
    if participant.status != BONUSED:
        participant.bonus = bonus
        db_session.add(participant)
        db_session.commit()
    return jsonify(bonusComputed="success", bonus=participant.bonus)
