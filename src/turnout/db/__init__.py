"""Database access: models built per configuration, engines, sessions, locks, migrations."""

from turnout.db.engine import Database, make_engine
from turnout.db.models import Models, build_models

__all__ = ["Database", "Models", "build_models", "make_engine"]
