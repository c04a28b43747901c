"""scheduled broadcasts are addressed at their time: a plan may be skipped, with the reason

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
# Only the broadcast plans (0006) change; the other branches are untouched.
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_STATES = "state IN ('scheduled', 'started', 'cancelled')"
NEW_STATES = "state IN ('scheduled', 'started', 'cancelled', 'skipped')"


def _replace_state_check(states: str) -> None:
    # Batch mode: SQLite changes a CHECK constraint only by copying the table.
    with op.batch_alter_table("broadcast_plans") as batch:
        batch.drop_constraint(op.f("ck_broadcast_plans_state"), type_="check")
        batch.create_check_constraint("state", states)


def upgrade() -> None:
    with op.batch_alter_table("broadcast_plans") as batch:
        batch.add_column(sa.Column("skip_reason", sa.String(255), nullable=True))
    _replace_state_check(NEW_STATES)


def downgrade() -> None:
    # A skipped plan has no older equivalent: it never sent anything, as a cancelled one.
    op.execute("UPDATE broadcast_plans SET state = 'cancelled' WHERE state = 'skipped'")
    _replace_state_check(OLD_STATES)
    with op.batch_alter_table("broadcast_plans") as batch:
        batch.drop_column("skip_reason")
