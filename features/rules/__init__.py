"""Rule profiles: the safe rule language, its evaluation, and the default profiles."""
