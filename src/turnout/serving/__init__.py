"""Serving a project: the gunicorn launcher behind ``turnout serve`` and its worker class."""
