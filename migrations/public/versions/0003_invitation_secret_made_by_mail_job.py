"""An invitation's link secret is made by the mail job: no digest until then.

Revision ID: p0003
Revises: p0002
Create Date: 2026-11-24
"""
from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("invitations", "token_hash", nullable=True, schema="public")


def downgrade() -> None:
    op.execute("DELETE FROM public.invitations WHERE token_hash IS NULL")
    op.alter_column("invitations", "token_hash", nullable=False, schema="public")
