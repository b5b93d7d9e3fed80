"""Tenant registry, schema pool, people, memberships, API tokens, invitations.

Revision ID: p0001
Revises:
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Extensions live in public so every tenant schema (search_path "t_N, public") sees them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("uuid", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("plan", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        # The tenant tree revision of its schema, written in the same transaction as the
        # schema's own alembic_version: "which tenants are behind" is one query.
        sa.Column("schema_revision", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("uuid", name="uq_tenants_uuid"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        schema="public",
    )
    op.create_table(
        "schema_pool",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_schema_pool"),
        schema="public",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("locale", sa.String(10), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        schema="public",
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_memberships"),
        sa.ForeignKeyConstraint(["user_id"], ["public.users.id"], ondelete="CASCADE", name="fk_memberships_user_id_users"),
        sa.ForeignKeyConstraint(["tenant_id"], ["public.tenants.id"], ondelete="CASCADE", name="fk_memberships_tenant_id_tenants"),
        sa.UniqueConstraint("user_id", "tenant_id", name="uq_memberships_user_id"),
        schema="public",
    )
    op.create_index("ix_public_memberships_user_id", "memberships", ["user_id"], schema="public")
    op.create_index("ix_public_memberships_tenant_id", "memberships", ["tenant_id"], schema="public")
    for table in ("api_tokens", "invitations"):
        extra = (
            [
                sa.Column("last_used_at", TS, nullable=True),
                sa.Column("revoked_at", TS, nullable=True),
                sa.Column("user_id", sa.BigInteger, nullable=False),
                sa.ForeignKeyConstraint(["user_id"], ["public.users.id"], ondelete="CASCADE", name="fk_api_tokens_user_id_users"),
            ]
            if table == "api_tokens"
            else [
                sa.Column("email", sa.String(254), nullable=False),
                sa.Column("role", sa.String(20), nullable=False),
                sa.Column("invited_by", sa.BigInteger, nullable=True),
                sa.Column("expires_at", TS, nullable=False),
                sa.Column("accepted_at", TS, nullable=True),
                sa.Column("sent_at", TS, nullable=True),
                sa.ForeignKeyConstraint(["invited_by"], ["public.users.id"], ondelete="SET NULL", name="fk_invitations_invited_by_users"),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
            # An invitation's secret is made by its mail job: no digest until then.
            sa.Column("token_hash", sa.String(64), nullable=table == "invitations"),
            sa.Column("tenant_id", sa.BigInteger, nullable=False),
            sa.Column("created_at", TS, nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint("token_hash", name=f"uq_{table}_token_hash"),
            sa.ForeignKeyConstraint(["tenant_id"], ["public.tenants.id"], ondelete="CASCADE", name=f"fk_{table}_tenant_id_tenants"),
            schema="public",
        )
        op.create_index(f"ix_public_{table}_tenant_id", table, ["tenant_id"], schema="public")
    op.create_index("ix_public_api_tokens_user_id", "api_tokens", ["user_id"], schema="public")


def downgrade() -> None:
    for table in ("invitations", "api_tokens", "memberships", "users", "schema_pool", "tenants"):
        op.drop_table(table, schema="public")
