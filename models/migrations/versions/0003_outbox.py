"""outbox: campaigns, deliveries, shared access token, sender state, subscribe acceptances

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("audience", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("template_key", sa.String(32), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", AwareDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_campaigns_dedup_key")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("not_before", AwareDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(24), nullable=True),
        sa.Column("msgid", sa.String(64), nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(255), nullable=True),
        sa.Column("claimed_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_deliveries_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("campaign_id", "openid", name=op.f("uq_deliveries_campaign_id_openid")),
    )
    op.create_index(op.f("ix_deliveries_campaign_id"), "deliveries", ["campaign_id"])
    op.create_index(op.f("ix_deliveries_status"), "deliveries", ["status"])
    op.create_table(
        "wechat_access_tokens",
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("token", sa.String(512), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_wechat_access_tokens")),
    )
    op.create_table(
        "sender_state",
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("paused_errcode", sa.Integer(), nullable=True),
        sa.Column("paused_errmsg", sa.String(255), nullable=True),
        sa.Column("paused_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_sender_state")),
    )
    op.create_table(
        "subscribe_acceptances",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("accepted_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("openid", "template_id", name=op.f("pk_subscribe_acceptances")),
    )


def downgrade() -> None:
    op.drop_table("subscribe_acceptances")
    op.drop_table("sender_state")
    op.drop_table("wechat_access_tokens")
    op.drop_index(op.f("ix_deliveries_status"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_campaign_id"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("campaigns")
