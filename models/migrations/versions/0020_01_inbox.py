"""the organizers' inbox of questions the bot could not answer

Revision ID: 0020_01
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0020_01"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_questions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("words", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("asked_at", AwareDateTime(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_questions")),
    )
    op.create_index(op.f("ix_inbox_questions_words"), "inbox_questions", ["words"])
    op.create_index(op.f("ix_inbox_questions_status"), "inbox_questions", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbox_questions_status"), table_name="inbox_questions")
    op.drop_index(op.f("ix_inbox_questions_words"), table_name="inbox_questions")
    op.drop_table("inbox_questions")
