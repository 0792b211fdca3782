"""bangla_data: the data layer for Bangla toxic-comment and cyberbullying research.

This file is written by hand (nbdev only updates `__version__`). The environment module is imported
first so that `TOKENIZERS_PARALLELISM` is set before anything imports transformers.
"""
__version__ = "0.1.0"

from .env import *  # noqa: F401,F403  (must stay first)
from .labels import *  # noqa: F401,F403
from .loading import *  # noqa: F401,F403
from .caching import *  # noqa: F401,F403
from .dataset import *  # noqa: F401,F403
from .kfold import *  # noqa: F401,F403
from .weights import *  # noqa: F401,F403
from .loaders import *  # noqa: F401,F403
from .pipeline import *  # noqa: F401,F403
from .plotting import *  # noqa: F401,F403
