"""Schemathesis against the real app (real SQLite store, real lake, a real admin key): bounded stateless and
stateful runs over every operation of the OpenAPI description, with schemathesis's checks.

Two deliberate, listed departures from schemathesis's defaults:

* ``not_a_server_error`` is replaced by :func:`no_undocumented_server_error`: this app runs without a targeting
  engine, so model routes answer their documented 503 (with ``Retry-After``); any 500, or a 5xx the
  operation does not document, still fails.
* ``positive_data_acceptance`` is not applied to the operations in :data:`SEMANTIC_VALIDATION`, whose
  inputs have rules JSON Schema cannot state (an ISO 6346 check digit, the rule language's grammar,
  cross-field rules, control characters refused in free text); their refusals are 422s naming the
  field, which ``negative_data_rejection`` and the other checks still cover.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import checks

from serve.app import create_app
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key

pytestmark = pytest.mark.slow

SEMANTIC_VALIDATION = {
    "POST /v1/ports/{port}/inspection-lists": "nii + physical capacity must add up to capacity; JSON integers written as 1.0",
    "POST /v1/inspection-lists/{list_id}/amendments": "free text without control characters; exam_type only with ADD",
    "POST /v1/inspection-outcomes": "seizure_category required exactly for SEIZURE; container check digit; free text",
    "GET /v1/containers/{container}/risk": "ISO 6346 check digit",
    "GET /v1/ports/{port}/hit-rates": "since must be before until, at most 3660 days apart",
    "POST /v1/watchlist": "the value's format depends on kind; free text",
    "POST /v1/rules": "the expression must parse in the rule language; free text",
    "POST /v1/exchange/sent": "message body depends on its type",
}
EXAMPLES_PER_OPERATION = 6
UNLIMITED = {"officer": 1e6, "data_scientist": 1e6, "auditor": 1e6, "admin": 1e6}


@checks.check
def no_undocumented_server_error(ctx, response, case):  # noqa: ANN001, ANN201 - schemathesis's check signature
    """A 5xx is a failure unless the operation documents that status (503 without an engine); a 500 always is."""
    status = response.status_code
    documented = case.operation.definition.raw.get("responses", {})
    if status >= 500 and (status == 500 or str(status) not in documented):
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    return None


@pytest.fixture
def api(tmp_path, service_lake_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=service_lake_dir, auth_failure_flush_seconds=0, rate_limits=UNLIMITED)
    )
    with app.state.database.write() as session:
        key = create_key(session, role=Role.ADMIN, ports=(), created_by="schemathesis").key
    return app, {"Authorization": f"Bearer {key}"}


def _excluded(label: str) -> list:
    excluded = [checks.not_a_server_error]
    if label in SEMANTIC_VALIDATION:
        excluded.append(checks.positive_data_acceptance)
    return excluded


def test_every_operation_passes_schemathesis_checks_stateless(api):
    app, auth = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    began = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def run(case) -> None:  # noqa: ANN001
            case.headers = {**(case.headers or {}), **auth}
            case.call_and_validate(excluded_checks=_excluded(label), additional_checks=[no_undocumented_server_error])

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures[label] = str(exc)[:800]
    assert failures == {}
    assert time.monotonic() - began < 60


def test_schemathesis_stateful_run_passes(api):
    app, auth = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    machine = schema.as_state_machine()

    class Authenticated(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):  # noqa: ANN001, ANN201
            return {"headers": auth}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # noqa: ANN001, ANN201
            label = f"{case.operation.method.upper()} {case.operation.path}"
            case.validate_response(
                response,
                additional_checks=[*(additional_checks or []), no_undocumented_server_error],
                excluded_checks=_excluded(label),
                transport_kwargs=kwargs,
            )

    run_state_machine_as_test(
        Authenticated,
        settings=settings(max_examples=8, stateful_step_count=6, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
