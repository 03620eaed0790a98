"""The data platform: contracts, validation and quarantine, ingest, the lake and the port reference."""
