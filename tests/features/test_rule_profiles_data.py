"""The default rule profiles are a data file shipped with the package, read into validated profiles."""

from __future__ import annotations

import json
from importlib import resources

from features.rules.language import RULESET_FORMAT, default_rule_profiles, ruleset_hash
from features.rules.profiles import DEFAULT_PROFILES_FILE


def test_default_profiles_come_from_the_packaged_json_file_in_its_order():
    data = json.loads(resources.files("features.rules").joinpath(DEFAULT_PROFILES_FILE).read_text(encoding="utf-8"))
    assert data["format"] == RULESET_FORMAT
    profiles = default_rule_profiles()
    assert [p.canonical() for p in profiles] == data["rules"]
    assert len({p.code for p in profiles}) == len(profiles) > 0


def test_each_call_returns_fresh_equal_profiles_with_a_stable_hash():
    first, second = default_rule_profiles(), default_rule_profiles()
    assert first == second and first[0] is not second[0]
    assert ruleset_hash(first) == ruleset_hash(second)
