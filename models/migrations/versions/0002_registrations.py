"""registrations and registration form state

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("company", sa.String(128), nullable=True),
        sa.Column("title", sa.String(128), nullable=True),
        sa.Column("attendance", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("checkin_code", sa.String(6), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.Column("checked_in_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("event_id", "checkin_code", name=op.f("uq_registrations_event_id_checkin_code")),
        sa.CheckConstraint(
            "status IN ('confirmed', 'waitlisted', 'cancelled')", name=op.f("ck_registrations_status")
        ),
        sa.CheckConstraint("attendance IN ('onsite', 'online')", name=op.f("ck_registrations_attendance")),
        sa.CheckConstraint(
            "(status = 'waitlisted') = (position IS NOT NULL)",
            name=op.f("ck_registrations_position_iff_waitlisted"),
        ),
    )
    op.create_index(op.f("ix_registrations_openid"), "registrations", ["openid"])
    op.create_index(
        "uq_registrations_active_openid",
        "registrations",
        ["event_id", "openid"],
        unique=True,
        sqlite_where=sa.text("status != 'cancelled'"),
        postgresql_where=sa.text("status != 'cancelled'"),
    )
    op.create_index(
        "uq_registrations_waitlist_position",
        "registrations",
        ["event_id", "position"],
        unique=True,
        sqlite_where=sa.text("position IS NOT NULL"),
        postgresql_where=sa.text("position IS NOT NULL"),
    )
    op.create_table(
        "form_states",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=True),
        sa.Column("last_dedup_key", sa.String(255), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_form_states")),
    )


def downgrade() -> None:
    op.drop_table("form_states")
    op.drop_index("uq_registrations_waitlist_position", table_name="registrations")
    op.drop_index("uq_registrations_active_openid", table_name="registrations")
    op.drop_index(op.f("ix_registrations_openid"), table_name="registrations")
    op.drop_table("registrations")
