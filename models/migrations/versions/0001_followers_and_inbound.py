"""followers and inbound messages

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followers",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", AwareDateTime(), nullable=False),
        sa.Column("last_interaction_at", AwareDateTime(), nullable=False),
        sa.Column("last_list", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_followers")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("reply_xml", sa.Text(), nullable=True),
        sa.Column("claimed_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dedup_key", name=op.f("pk_inbound_messages")),
    )
    op.create_index(op.f("ix_inbound_messages_claimed_at"), "inbound_messages", ["claimed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_messages_claimed_at"), table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("followers")
