"""reminders: reminder decisions, scheduler lease and job store, confirmation time, per-delivery text

Revision ID: 0005
Revises: 0002, 0003
"""

import sqlalchemy as sa
from alembic import op

from models.base import AwareDateTime

revision = "0005"
# Columns are added to the registration (0002) and outbox (0003) tables, so this merges those branches.
# (A merge rather than depends_on: Alembic 1.20 fails with depends_on naming two sibling branches.)
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("offset_text", sa.String(16), nullable=False),
        sa.Column("due_at", AwareDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("decided_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_runs")),
        sa.UniqueConstraint(
            "event_id", "offset_text", "due_at", name=op.f("uq_reminder_runs_event_id_offset_text_due_at")
        ),
    )
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_jobs")),
    )
    op.create_index(op.f("ix_scheduler_jobs_next_run_time"), "scheduler_jobs", ["next_run_time"])
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("confirmed_at", AwareDateTime(), nullable=True))
    # Existing confirmed registrations: their last change is the best record of when they were confirmed.
    op.execute("UPDATE registrations SET confirmed_at = updated_at WHERE status = 'confirmed'")
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("text")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("confirmed_at")
    op.drop_index(op.f("ix_scheduler_jobs_next_run_time"), table_name="scheduler_jobs")
    op.drop_table("scheduler_jobs")
    op.drop_table("scheduler_leases")
    op.drop_table("reminder_runs")
