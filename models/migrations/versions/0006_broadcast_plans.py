"""broadcast drafts (in-chat, awaiting 确认广播) and broadcast plans (schedule, cancel, outcome report)

Revision ID: 0006
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast_drafts",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_broadcast_drafts")),
    )
    op.create_table(
        "broadcast_plans",
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("send_at", AwareDateTime(), nullable=True),
        sa.Column("report_to", sa.String(64), nullable=True),
        sa.Column("reported_at", AwareDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('scheduled', 'started', 'cancelled')", name=op.f("ck_broadcast_plans_state")),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_broadcast_plans")),
    )
    op.create_index(op.f("ix_broadcast_plans_state"), "broadcast_plans", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_broadcast_plans_state"), table_name="broadcast_plans")
    op.drop_table("broadcast_plans")
    op.drop_table("broadcast_drafts")
