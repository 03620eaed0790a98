"""The operational store: one module per resource; every function takes an open session.

Public entry points used by the engine side and the CLI:

* :func:`serve.store.rulesets.current_ruleset`, :func:`~serve.store.rulesets.ruleset_snapshot`,
  :func:`~serve.store.rulesets.ensure_seeded`;
* :func:`serve.store.watchlist.watchlist_frame_at` (ALERTS-contract frame);
* :func:`serve.store.outcomes.export_outcomes` (INSPECTION_OUTCOMES-contract frame);
* :func:`serve.audit.record_event`, :func:`serve.audit.verify_chain`.
"""

from serve.store.outcomes import export_outcomes
from serve.store.rulesets import current_ruleset, ensure_seeded, ruleset_snapshot
from serve.store.watchlist import watchlist_frame_at

__all__ = ["current_ruleset", "ensure_seeded", "export_outcomes", "ruleset_snapshot", "watchlist_frame_at"]
