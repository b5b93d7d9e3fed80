"""Alembic trees: `public/` (shared tables, once) and `tenant/` (one copy per tenant schema)."""
from pathlib import Path

PUBLIC = str(Path(__file__).parent / "public")
TENANT = str(Path(__file__).parent / "tenant")
