"""One router per resource; :data:`ROUTERS` lists them in mounting order."""

from serve.routes import audit, containers, exchange, health, lists, models, outcomes, rules, watchlist

ROUTERS = (
    health.router,
    lists.router,
    outcomes.router,
    containers.router,
    watchlist.router,
    rules.router,
    models.router,
    audit.router,
    exchange.router,
)
