"""The command line (README, Commands): a thin door. Errors are one sentence on stderr
unless --debug.

`common` holds the `main` group; each module below adds its commands to it.
"""

from bot.cli import core, feedback, subscribers, subscriptions  # noqa: F401  (registers the commands)
from bot.cli.common import main

__all__ = ["main"]
