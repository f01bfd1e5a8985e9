"""``python -m inpaintgan`` == the ``inpaintgan`` command."""

import sys

from inpaintgan.cli import main

sys.exit(main())
