"""The task runner: one process that runs campaigns, scheduled tasks and background work.

``lease.py`` keeps it to one runner per job store, ``jobs.py`` holds the thin job
functions APScheduler calls (they take ids and plain values only), ``runner.py`` wires
APScheduler's SQLAlchemyJobStore to the campaign and task tables, and ``embed.py`` starts a
runner beside ``turnout serve`` when the configuration asks for one.
"""
