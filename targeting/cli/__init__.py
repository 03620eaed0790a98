"""Command-line entry point: the one place that wires features, models, targeting and serve together.

Each command group lives in its own module of this package and is registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="targeting",
    help="ccp-targeting: container risk targeting for port control units.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from targeting.cli import data  # noqa: F401  (registers ingest)
    from targeting.cli import world  # noqa: F401  (registers simulate)
    from targeting.cli import features  # noqa: F401  (registers features, docs features)
    from targeting.cli import models  # noqa: F401  (registers train, promote, models, compare)
    from targeting.cli import service  # noqa: F401  (registers serve, keys, audit, rules, watchlist, outcomes)
    from targeting.cli import demo  # noqa: F401  (registers demo)
    from targeting.cli import users  # noqa: F401  (registers users)
    from targeting.cli import stores  # noqa: F401  (registers init)
    from targeting.cli import backtest  # noqa: F401  (registers backtest)
    from targeting.cli import drift  # noqa: F401  (registers drift)
    from targeting.cli import benchmark  # noqa: F401  (registers benchmark kcs)
    from targeting.cli import reference  # noqa: F401  (registers reference show, reference update)
    from targeting.cli import lake  # noqa: F401  (registers lake migrate, verify, vacuum, log)
    from targeting.cli import exchange  # noqa: F401  (registers exchange keygen, schema, export, import, value)


def main() -> None:
    """Run the ``targeting`` command."""
    _register()
    from targeting.cli import stores

    stores.CLOCK_FROM_CONFIG = True  # this process is the command: ccp.toml's clock_at may set its clock
    app()
