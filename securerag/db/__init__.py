"""Database access: the embedded server, connections, context, migrations, checks."""

from securerag.db.context import Access, set_settings, tenant_transaction
from securerag.db.database import APP_ROLE, Database
from securerag.db.provision import InitReport, initialize, open_database

__all__ = [
    "APP_ROLE",
    "Access",
    "Database",
    "InitReport",
    "initialize",
    "open_database",
    "set_settings",
    "tenant_transaction",
]
