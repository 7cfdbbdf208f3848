"""The configuration contract: one typed object (``schema``) read from YAML that keeps its line numbers (``yamlsrc``)
by ``load`` (which also applies the environment's overrides), with the e-mail addresses (``addresses``) and the
Redis URLs (``redisurl``) it accepts.

May import: ``monitor.core`` only.
"""

from monitor.config.load import load_config, with_environment
from monitor.config.schema import *  # noqa: F403  (the public names are the schema's __all__)
from monitor.config.schema import __all__ as _schema_all

__all__ = [*_schema_all, "load_config", "with_environment"]
