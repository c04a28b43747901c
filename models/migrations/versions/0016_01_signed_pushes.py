"""signed_pushes: each signed (timestamp, nonce) pair bound to the body it first came with

Revision ID: 0016_01
Revises: 0020_01
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0016_01"
down_revision = "0020_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_pushes",
        sa.Column("timestamp_nonce", sa.String(80), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("bound_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("timestamp_nonce", name=op.f("pk_signed_pushes")),
    )
    op.create_index(op.f("ix_signed_pushes_bound_at"), "signed_pushes", ["bound_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_signed_pushes_bound_at"), table_name="signed_pushes")
    op.drop_table("signed_pushes")
