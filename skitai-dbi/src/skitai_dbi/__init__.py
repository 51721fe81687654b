"""skitai-dbi: database corequests for Skitai (`was.db`, `was.transaction`).

The plugin (`skitai_dbi.plugin`) serves the `skitai.DB_PGSQL`, `skitai.DB_SQLITE3`,
`skitai.DB_REDIS` and `skitai.DB_MONGODB` alias kinds; see the README's "Databases" section."""
from .settings import set_pool_size

__all__ = ["set_pool_size"]
