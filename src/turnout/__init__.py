"""turnout: run online behavioural experiments and recruit participants on Mechanical Turk.

The maintained successor of psiTurk: a psiTurk project folder runs on turnout unchanged.
"""

__version__ = "0.1.0"
