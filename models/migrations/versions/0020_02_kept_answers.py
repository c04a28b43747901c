"""kept_answers: a follower's answers kept after 取消报名 for their next 报名

Revision ID: 0020_02
Revises: 0021_02
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0020_02"
down_revision = "0021_02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kept_answers",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_kept_answers")),
    )
    op.create_index(op.f("ix_kept_answers_expires_at"), "kept_answers", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_kept_answers_expires_at"), table_name="kept_answers")
    op.drop_table("kept_answers")
