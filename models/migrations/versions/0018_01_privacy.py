"""privacy: consent and erasure on registrations, the admin audit trail

Revision ID: 0018_01
Revises: 0021_01
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0018_01"
down_revision = "0021_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("notice_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("consent_at", AwareDateTime(), nullable=True))
        batch.add_column(sa.Column("erased_at", AwareDateTime(), nullable=True))
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", AwareDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )
    op.create_index(op.f("ix_admin_audit_at"), "admin_audit", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_audit_at"), table_name="admin_audit")
    op.drop_table("admin_audit")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("consent_at")
        batch.drop_column("notice_version")
