"""Billing: each company's subscription (its plan moves here from tenants), processed Stripe
events, and platform admins.

Revision ID: p0003
Revises: p0002
Create Date: 2026-12-05 11:28:08.759199
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'p0003'
down_revision = 'p0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stripe_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events')),
    schema='public'
    )
    op.create_index(op.f('ix_public_stripe_events_tenant_id'), 'stripe_events', ['tenant_id'], unique=False, schema='public')
    op.create_table('subscriptions',
    sa.Column('tenant_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('plan', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('monthly_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('current_period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False),
    sa.Column('trial_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('past_due_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_item_id', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['public.tenants.id'], name=op.f('fk_subscriptions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_subscriptions')),
    sa.UniqueConstraint('stripe_customer_id', name=op.f('uq_subscriptions_stripe_customer_id')),
    sa.UniqueConstraint('stripe_subscription_id', name=op.f('uq_subscriptions_stripe_subscription_id')),
    schema='public'
    )
    op.create_index(op.f('ix_public_subscriptions_plan'), 'subscriptions', ['plan'], unique=False, schema='public')
    # Every company gets its subscription row, on the plan it was on, offline.
    op.execute("""INSERT INTO public.subscriptions (tenant_id, plan, status, provider, seats, monthly_amount,
                      currency, cancel_at_period_end, updated_at)
                  SELECT t.id, t.plan, 'active', 'offline',
                         GREATEST(1, (SELECT count(*) FROM public.memberships m WHERE m.tenant_id = t.id AND m.active)),
                         0, 'usd', false, now()
                  FROM public.tenants t""")
    op.drop_column('tenants', 'plan', schema='public')
    op.add_column('users', sa.Column('platform_admin', sa.Boolean(), server_default='false', nullable=False),
                  schema='public')


def downgrade() -> None:
    op.drop_column('users', 'platform_admin', schema='public')
    op.add_column('tenants', sa.Column('plan', sa.VARCHAR(length=30), server_default='free', nullable=False),
                  schema='public')
    op.execute("UPDATE public.tenants t SET plan = s.plan FROM public.subscriptions s WHERE s.tenant_id = t.id")
    op.drop_index(op.f('ix_public_subscriptions_plan'), table_name='subscriptions', schema='public')
    op.drop_table('subscriptions', schema='public')
    op.drop_index(op.f('ix_public_stripe_events_tenant_id'), table_name='stripe_events', schema='public')
    op.drop_table('stripe_events', schema='public')
