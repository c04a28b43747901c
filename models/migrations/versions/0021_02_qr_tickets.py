"""qr_tickets: each permanent QR code WeChat made, per account and scene, kept for every process

Revision ID: 0021_02
Revises: 0018_01
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0021_02"
down_revision = "0018_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qr_tickets",
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("scene", sa.String(64), nullable=False),
        sa.Column("ticket", sa.String(255), nullable=False),
        sa.Column("url", sa.String(255), nullable=False),
        sa.Column("created_at", AwareDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "scene", name=op.f("pk_qr_tickets")),
    )


def downgrade() -> None:
    op.drop_table("qr_tickets")
