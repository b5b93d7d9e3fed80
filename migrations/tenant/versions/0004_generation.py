"""Documents made from templates: templates and their versions, number counters, our company's
images, and the generation state of a document.

Revision ID: t0004
Revises: t0003
Create Date: 2026-12-05 15:11:44.716466
"""
from alembic import op
import sqlalchemy as sa

revision = 't0004'
down_revision = 't0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Unqualified names: the runner points search_path at the tenant's schema.
    op.create_table('company_images',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_company_images'))
    )
    op.create_table('document_templates',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('document_type', sa.String(length=20), nullable=False),
    sa.Column('applies_to', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('page_size', sa.String(length=10), nullable=False),
    sa.Column('margin_top', sa.Integer(), nullable=False),
    sa.Column('margin_right', sa.Integer(), nullable=False),
    sa.Column('margin_bottom', sa.Integer(), nullable=False),
    sa.Column('margin_left', sa.Integer(), nullable=False),
    sa.Column('header_html', sa.Text(), nullable=False),
    sa.Column('footer_html', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_templates'))
    )
    op.create_table('number_counters',
    sa.Column('document_type', sa.String(length=20), nullable=False),
    sa.Column('pattern', sa.String(length=60), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('document_type', name=op.f('pk_number_counters'))
    )
    op.create_table('document_template_versions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('template_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('document_type', sa.String(length=20), nullable=False),
    sa.Column('applies_to', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('page_size', sa.String(length=10), nullable=False),
    sa.Column('margin_top', sa.Integer(), nullable=False),
    sa.Column('margin_right', sa.Integer(), nullable=False),
    sa.Column('margin_bottom', sa.Integer(), nullable=False),
    sa.Column('margin_left', sa.Integer(), nullable=False),
    sa.Column('header_html', sa.Text(), nullable=False),
    sa.Column('footer_html', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['document_templates.id'], name=op.f('fk_document_template_versions_template_id_document_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_template_versions')),
    sa.UniqueConstraint('template_id', 'number', name=op.f('uq_document_template_versions_template_id'))
    )
    op.add_column('document_versions', sa.Column('source_html', sa.Text(), nullable=True))
    op.add_column('documents', sa.Column('template_id', sa.BigInteger(), nullable=True))
    op.add_column('documents', sa.Column('template_version', sa.Integer(), nullable=True))
    op.add_column('documents', sa.Column('generation', sa.String(length=12), nullable=True))
    op.add_column('documents', sa.Column('generation_error', sa.Text(), nullable=True))
    op.add_column('documents', sa.Column('generation_claim', sa.String(length=64), nullable=True))
    op.add_column('documents', sa.Column('generation_claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('documents', sa.Column('generation_attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('documents', sa.Column('batch_id', sa.String(length=36), nullable=True))
    op.create_index(op.f('ix_documents_batch_id'), 'documents', ['batch_id'], unique=False)
    op.create_index('ix_documents_generating', 'documents', ['created_at'], unique=False,
                    postgresql_where=sa.text("generation = 'generating'"))
    op.create_foreign_key(op.f('fk_documents_template_id_document_templates'), 'documents', 'document_templates', ['template_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_documents_template_id_document_templates'), 'documents', type_='foreignkey')
    op.drop_index('ix_documents_generating', table_name='documents')
    op.drop_index(op.f('ix_documents_batch_id'), table_name='documents')
    for column in ('batch_id', 'generation_attempts', 'generation_claimed_at', 'generation_claim', 'generation_error',
                   'generation', 'template_version', 'template_id'):
        op.drop_column('documents', column)
    op.drop_column('document_versions', 'source_html')
    for table in ('document_template_versions', 'number_counters', 'document_templates', 'company_images'):
        op.drop_table(table)
