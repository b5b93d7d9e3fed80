"""When an invitation's mail went out, so the people page can tell a sent one from a stuck one.

Revision ID: p0004
Revises: p0003
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "p0004"
down_revision = "p0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invitations", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True), schema="public")
    op.execute("UPDATE public.invitations SET sent_at = created_at WHERE token_hash IS NOT NULL")


def downgrade() -> None:
    op.drop_column("invitations", "sent_at", schema="public")
