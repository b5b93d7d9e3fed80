"""Tenant registry, tenant-scoped database sessions, schema provisioning and migrations.

Knows nothing of CRM: it creates, scopes and migrates schemas whatever tables they hold.
"""
