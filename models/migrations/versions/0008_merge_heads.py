"""merge the topic branches into one head

Registration, outbox, rules and broadcasts were developed as parallel branches from 0001; this joins
them so ``alembic upgrade head`` and the next migration have one parent.

Revision ID: 0008
Revises: 0004, 0005, 0007
"""

revision = "0008"
down_revision = ("0004", "0005", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
