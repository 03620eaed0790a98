"""``python -m targeting.cli``: same as the ``targeting`` command."""

from targeting.cli import main

main()
