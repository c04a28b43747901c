"""registrations.walk_in: people an organizer adds at the door, without a WeChat follower

Revision ID: 0021_01
Revises: 0016_01
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_01"
down_revision = "0016_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("walk_in", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("walk_in")
