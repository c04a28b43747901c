"""Alembic environment: migrations run against the URL given by ``models.migrate``."""

from alembic import context

from models import Base
from models.db import create_db_engine

config = context.config


def run_migrations() -> None:
    engine = create_db_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
