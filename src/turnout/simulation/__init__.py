"""Simulated workers for the offline marketplace, and the worker site where a person acts
as one.

``behaviour`` decides, from a seed, what each simulated worker will do; ``browser`` is
the loopback-only HTTP client they use; ``driver`` walks one worker through the
marketplace and the project's pages exactly as psiturk.js would; ``arrivals`` sends
workers at a steady rate while ``turnout serve`` runs; ``worker_site`` is a small web app
mounted at ``/_mturk/worker``.
"""
