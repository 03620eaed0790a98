"""Intelligence exchange between port control units (ContainerCOMM / CENcomm style).

- :mod:`targeting.exchange.messages`: the versioned message format (Pydantic models, the one source of the
  JSON Schema in ``docs/exchange/``);
- :mod:`targeting.exchange.signing`: Ed25519 keys, canonical JSON and detached signatures;
- :mod:`targeting.exchange.network`: the units an instance hosts, its peers, their keys and policies;
- :mod:`targeting.exchange.policy`: checks of a received message, visibility by handling code;
- :mod:`targeting.exchange.drafts`: messages the engine drafts (feedback, notices, seizure reports, alerts)
  and the watchlist entries an accepted message becomes;
- :mod:`targeting.exchange.files`: signed JSON Lines export and import.

Domain logic only: nothing here imports ``serve``.
"""
