import saas.models  # noqa: F401  (registers every model)
from migrations.env_common import run
from tenants.db import PublicModel

run(PublicModel.metadata, "public")
