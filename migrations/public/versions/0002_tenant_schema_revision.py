"""Record each tenant schema's revision in the registry.

Revision ID: p0002
Revises: p0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("schema_revision", sa.String(64), nullable=True), schema="public")
    # Existing tenants: copy what each schema's own version table says (a missing one stays NULL,
    # which `db upgrade` treats as pending).
    connection = op.get_bind()
    for (tenant_id,) in connection.execute(sa.text("SELECT id FROM public.tenants")).all():
        table = f"t_{int(tenant_id)}.alembic_version"
        exists = connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar()
        version = connection.execute(sa.text(f"SELECT version_num FROM {table}")).scalar() if exists else None
        connection.execute(sa.text("UPDATE public.tenants SET schema_revision = :v WHERE id = :id"),
                           {"v": version, "id": tenant_id})


def downgrade() -> None:
    op.drop_column("tenants", "schema_revision", schema="public")
