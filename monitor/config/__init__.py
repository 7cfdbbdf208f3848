"""The configuration contract: one typed object (``schema``) read from YAML that keeps its line numbers (``yamlsrc``),
with the e-mail addresses it accepts (``addresses``).

May import: ``monitor.core`` only.
"""

from monitor.config.schema import *  # noqa: F403  (the public names are the schema's __all__)
from monitor.config.schema import __all__ as __all__
