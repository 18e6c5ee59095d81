"""``python -m downloader``: the same as the ``fetch-docs`` command."""

import sys

from downloader.cli import main

sys.exit(main())
