# Autogenerate against one tenant schema: alembic -c migrations/alembic.ini -n tenant -x schema=t_1 …
from alembic import context

import saas.models  # noqa: F401  (registers every model)
from migrations.env_common import run
from tenants.db import TenantModel

run(TenantModel.metadata, context.get_x_argument(as_dictionary=True).get("schema", "t_1"))
