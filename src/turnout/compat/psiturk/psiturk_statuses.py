"""psiTurk's status constants."""

from turnout.experiment.status import Status

NOT_ACCEPTED = int(Status.NOT_ACCEPTED)
ALLOCATED = int(Status.ALLOCATED)
STARTED = int(Status.STARTED)
COMPLETED = int(Status.COMPLETED)
SUBMITTED = int(Status.SUBMITTED)
CREDITED = int(Status.CREDITED)
QUITEARLY = int(Status.QUITEARLY)
BONUSED = int(Status.BONUSED)
