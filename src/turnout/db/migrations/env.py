"""Alembic environment: the connection and table names come from turnout.db.migrate."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, version_table=config.attributes["version_table"],
                  transactional_ddl=connection.dialect.name != "mysql")
with context.begin_transaction():
    context.run_migrations(tables=config.attributes["tables"])
