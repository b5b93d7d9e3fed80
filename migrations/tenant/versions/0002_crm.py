"""CRM: companies, contacts, deals, leads, pipelines, custom fields, access rules, audit log.

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-24 13:34:56.261862
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 't0002'
down_revision = 't0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Unqualified names: the runner points search_path at the tenant's schema.
    op.create_table('access_rules',
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('see', sa.String(length=20), nullable=False),
    sa.Column('edit', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('role', 'entity', name=op.f('pk_access_rules'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('refs', sa.ARRAY(sa.String(length=40)), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_refs', 'audit_log', ['refs'], unique=False, postgresql_using='gin')
    op.create_table('contacts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('first_name', sa.String(length=200), nullable=False),
    sa.Column('last_name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.String(length=200), nullable=True),
    sa.Column('phones', sa.ARRAY(sa.String(length=20)), server_default='{}', nullable=False),
    sa.Column('emails', sa.ARRAY(sa.String(length=254)), server_default='{}', nullable=False),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('photo', sa.LargeBinary(), nullable=True),
    sa.Column('photo_type', sa.String(length=40), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('responsible_id', sa.BigInteger(), nullable=True),
    sa.Column('custom', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    op.create_index('ix_contacts_first_name_trgm', 'contacts', ['first_name'], unique=False, postgresql_using='gin', postgresql_ops={'first_name': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_contacts_last_name_trgm', 'contacts', ['last_name'], unique=False, postgresql_using='gin', postgresql_ops={'last_name': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_contacts_custom', 'contacts', ['custom'], unique=False, postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.create_index('ix_contacts_emails', 'contacts', ['emails'], unique=False, postgresql_using='gin')
    op.create_index('ix_contacts_last_name_first_name', 'contacts', ['last_name', 'first_name'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_contacts_phones', 'contacts', ['phones'], unique=False, postgresql_using='gin')
    op.create_index('ix_contacts_responsible_id', 'contacts', ['responsible_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_contacts_updated_at_id', 'contacts', ['updated_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('custom_fields',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_fields')),
    sa.UniqueConstraint('entity', 'key', name=op.f('uq_custom_fields_entity'))
    )
    op.create_table('departments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('name', name=op.f('uq_departments_name'))
    )
    op.create_table('import_jobs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('mapping', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('on_duplicate', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('merged', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('rejected', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_table('list_items',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('list_key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_list_items')),
    sa.UniqueConstraint('list_key', 'label', name=op.f('uq_list_items_list_key'))
    )
    op.create_table('pipelines',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipelines'))
    )
    op.create_table('companies',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('tin', sa.String(length=20), nullable=True),
    sa.Column('phones', sa.ARRAY(sa.String(length=20)), server_default='{}', nullable=False),
    sa.Column('emails', sa.ARRAY(sa.String(length=254)), server_default='{}', nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('website', sa.String(length=300), nullable=True),
    sa.Column('activity_type_id', sa.BigInteger(), nullable=True),
    sa.Column('region_id', sa.BigInteger(), nullable=True),
    sa.Column('group_id', sa.BigInteger(), nullable=True),
    sa.Column('category_id', sa.BigInteger(), nullable=True),
    sa.Column('source_id', sa.BigInteger(), nullable=True),
    sa.Column('important_dates', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('responsible_id', sa.BigInteger(), nullable=True),
    sa.Column('custom', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['activity_type_id'], ['list_items.id'], name=op.f('fk_companies_activity_type_id_list_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['category_id'], ['list_items.id'], name=op.f('fk_companies_category_id_list_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['group_id'], ['list_items.id'], name=op.f('fk_companies_group_id_list_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['list_items.id'], name=op.f('fk_companies_region_id_list_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['list_items.id'], name=op.f('fk_companies_source_id_list_items'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_companies'))
    )
    op.create_index('ix_companies_name_trgm', 'companies', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_companies_custom', 'companies', ['custom'], unique=False, postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.create_index('ix_companies_emails', 'companies', ['emails'], unique=False, postgresql_using='gin')
    op.create_index('ix_companies_name_id', 'companies', ['name', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_companies_phones', 'companies', ['phones'], unique=False, postgresql_using='gin')
    op.create_index('ix_companies_responsible_id', 'companies', ['responsible_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_companies_tin', 'companies', ['tin'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_companies_updated_at_id', 'companies', ['updated_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('staff_departments',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('department_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_staff_departments_department_id_departments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_staff_departments'))
    )
    op.create_index(op.f('ix_staff_departments_department_id'), 'staff_departments', ['department_id'], unique=False)
    op.create_table('stages',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('pipeline_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('color', sa.String(length=7), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_stages_pipeline_id_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stages'))
    )
    op.create_index(op.f('ix_stages_pipeline_id'), 'stages', ['pipeline_id'], unique=False)
    op.create_table('contact_companies',
    sa.Column('contact_id', sa.BigInteger(), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_contact_companies_company_id_companies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_companies_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'company_id', name=op.f('pk_contact_companies'))
    )
    op.create_index(op.f('ix_contact_companies_company_id'), 'contact_companies', ['company_id'], unique=False)
    op.create_table('deals',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('amount', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pipeline_id', sa.BigInteger(), nullable=False),
    sa.Column('stage_id', sa.BigInteger(), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('stage_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lead_id', sa.BigInteger(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('responsible_id', sa.BigInteger(), nullable=True),
    sa.Column('custom', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_deals_company_id_companies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_deals_pipeline_id_pipelines')),
    sa.ForeignKeyConstraint(['stage_id'], ['stages.id'], name=op.f('fk_deals_stage_id_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deals'))
    )
    op.create_index('ix_deals_close_date', 'deals', ['close_date'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_company_id', 'deals', ['company_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_title_trgm', 'deals', ['title'], unique=False, postgresql_using='gin', postgresql_ops={'title': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_custom', 'deals', ['custom'], unique=False, postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.create_index('ix_deals_pipeline_id_stage_id', 'deals', ['pipeline_id', 'stage_id'], unique=False, postgresql_include=['amount'], postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_responsible_id', 'deals', ['responsible_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_stage_id_id', 'deals', ['stage_id', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_deals_updated_at_id', 'deals', ['updated_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('deal_contacts',
    sa.Column('deal_id', sa.BigInteger(), nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_deal_contacts_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_contacts_deal_id_deals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('deal_id', 'contact_id', name=op.f('pk_deal_contacts'))
    )
    op.create_index(op.f('ix_deal_contacts_contact_id'), 'deal_contacts', ['contact_id'], unique=False)
    op.create_table('deal_items',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('deal_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=14, scale=3), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('price', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('discount', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('vat_rate', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_items_deal_id_deals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_items'))
    )
    op.create_index(op.f('ix_deal_items_deal_id'), 'deal_items', ['deal_id'], unique=False)
    op.create_table('leads',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('contact_name', sa.String(length=300), nullable=True),
    sa.Column('position', sa.String(length=200), nullable=True),
    sa.Column('company_name', sa.String(length=300), nullable=True),
    sa.Column('tin', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('stage_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('junk_reason', sa.Text(), nullable=True),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('contact_id', sa.BigInteger(), nullable=True),
    sa.Column('company_id', sa.BigInteger(), nullable=True),
    sa.Column('deal_id', sa.BigInteger(), nullable=True),
    sa.Column('responsible_id', sa.BigInteger(), nullable=True),
    sa.Column('custom', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_leads_company_id_companies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_leads_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_leads_deal_id_deals'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['stage_id'], ['stages.id'], name=op.f('fk_leads_stage_id_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    op.create_index('ix_leads_title_trgm', 'leads', ['title'], unique=False, postgresql_using='gin', postgresql_ops={'title': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_leads_contact_name_trgm', 'leads', ['contact_name'], unique=False, postgresql_using='gin', postgresql_ops={'contact_name': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_leads_company_name_trgm', 'leads', ['company_name'], unique=False, postgresql_using='gin', postgresql_ops={'company_name': 'gin_trgm_ops'}, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_leads_custom', 'leads', ['custom'], unique=False, postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.create_index('ix_leads_responsible_id', 'leads', ['responsible_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_leads_stage_id_id', 'leads', ['stage_id', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_leads_updated_at_id', 'leads', ['updated_at', 'id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_leads_updated_at_id', table_name='leads', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_leads_stage_id_id', table_name='leads', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_leads_responsible_id', table_name='leads', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_leads_custom', table_name='leads', postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.drop_table('leads')
    op.drop_index(op.f('ix_deal_items_deal_id'), table_name='deal_items')
    op.drop_table('deal_items')
    op.drop_index(op.f('ix_deal_contacts_contact_id'), table_name='deal_contacts')
    op.drop_table('deal_contacts')
    op.drop_index('ix_deals_updated_at_id', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_deals_stage_id_id', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_deals_responsible_id', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_deals_pipeline_id_stage_id', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_deals_custom', table_name='deals', postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.drop_index('ix_deals_company_id', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_deals_close_date', table_name='deals', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_table('deals')
    op.drop_index(op.f('ix_contact_companies_company_id'), table_name='contact_companies')
    op.drop_table('contact_companies')
    op.drop_index(op.f('ix_stages_pipeline_id'), table_name='stages')
    op.drop_table('stages')
    op.drop_index(op.f('ix_staff_departments_department_id'), table_name='staff_departments')
    op.drop_table('staff_departments')
    op.drop_index('ix_companies_updated_at_id', table_name='companies', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_companies_tin', table_name='companies', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_companies_responsible_id', table_name='companies', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_companies_phones', table_name='companies', postgresql_using='gin')
    op.drop_index('ix_companies_name_id', table_name='companies', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_companies_emails', table_name='companies', postgresql_using='gin')
    op.drop_index('ix_companies_custom', table_name='companies', postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.drop_table('companies')
    op.drop_table('pipelines')
    op.drop_table('list_items')
    op.drop_table('import_jobs')
    op.drop_table('departments')
    op.drop_table('custom_fields')
    op.drop_index('ix_contacts_updated_at_id', table_name='contacts', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_contacts_responsible_id', table_name='contacts', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_contacts_phones', table_name='contacts', postgresql_using='gin')
    op.drop_index('ix_contacts_last_name_first_name', table_name='contacts', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_contacts_emails', table_name='contacts', postgresql_using='gin')
    op.drop_index('ix_contacts_custom', table_name='contacts', postgresql_using='gin', postgresql_ops={'custom': 'jsonb_path_ops'})
    op.drop_table('contacts')
    op.drop_index('ix_audit_log_refs', table_name='audit_log', postgresql_using='gin')
    op.drop_table('audit_log')
    op.drop_table('access_rules')
