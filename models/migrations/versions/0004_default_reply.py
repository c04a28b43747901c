"""followers.default_reply_at: when the default reply was last sent

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("followers", sa.Column("default_reply_at", AwareDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("followers") as batch:
        batch.drop_column("default_reply_at")
