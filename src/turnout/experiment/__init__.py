"""Participant-facing side: routes, status state machine, counterbalancing, psiturk.js."""
