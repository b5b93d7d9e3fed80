"""The storage quota ledger: bytes stored and reserved per tenant, and open reservations.

Revision ID: p0002
Revises: p0001
Create Date: 2026-11-24 14:34:11.640561
"""
from alembic import op
import sqlalchemy as sa


revision = 'p0002'
down_revision = 'p0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('storage_ledger',
    sa.Column('tenant_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('used_bytes', sa.BigInteger(), nullable=False),
    sa.Column('reserved_bytes', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['public.tenants.id'], name=op.f('fk_storage_ledger_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_storage_ledger')),
    schema='public'
    )
    op.create_table('storage_reservations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['public.tenants.id'], name=op.f('fk_storage_reservations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storage_reservations')),
    schema='public'
    )
    op.create_index(op.f('ix_public_storage_reservations_tenant_id'), 'storage_reservations', ['tenant_id'], unique=False, schema='public')


def downgrade() -> None:
    op.drop_index(op.f('ix_public_storage_reservations_tenant_id'), table_name='storage_reservations', schema='public')
    op.drop_table('storage_reservations', schema='public')
    op.drop_table('storage_ledger', schema='public')
