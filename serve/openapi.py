"""A truthful OpenAPI description: every status a route can return, one 422 shape, real bounds, described fields.

:func:`install_openapi` replaces ``app.openapi`` with a generator that starts from FastAPI's schema and

* documents, with their body models, the statuses every route can return because of the layers in front of
  it: 401 (no valid key) and 429 (over the key's rate limit, ``Retry-After``) on every protected route, 403
  (the role lacks the permission, or the port is not the caller's) on every protected route, 404 on routes
  with path parameters (unknown or another port's object: the same answer), 413 and 422 on routes with a
  body, 422 on routes with parameters, 503 (storage unavailable, ``Retry-After``) on every route that
  touches the store;
* gives every 422 the one shape the service answers (:class:`ValidationErrorBody`, also what
  :func:`serve.errors.install_error_handlers` turns every 422 into);
* states the enforced page-size bound (``settings.max_page_size``) as the ``maximum`` of ``limit``;
* gives list creation a valid example body (Swagger UI's default one would be refused);
* describes every schema field and parameter: a field's own description wins; otherwise the glossary
  below (one wording per field name across the API; schema-qualified entries where a name means
  different things). A field the glossary does not know stays undescribed, which the schema test reports.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from features import clock
from serve.deps import PUBLIC, iter_app_routes, route_rules
from serve.settings import Settings


class ValidationProblem(BaseModel):
    """One reason a request was refused with 422."""

    loc: list[str | int] = Field(description="Where the problem is: `body`, `query`, `path` or `header`, then the field name(s).")
    msg: str = Field(description="What is wrong, in words (the rule the value broke).")
    type: str = Field(description="Machine-readable kind of problem (e.g. `missing`, `string_pattern_mismatch`, `value_error`).")


class ValidationErrorBody(BaseModel):
    """Body of every 422: the list of problems, never echoing the input."""

    detail: list[ValidationProblem] = Field(description="Every problem found, at least one.")


class ErrorResponse(BaseModel):
    """Body of every other error (4xx/5xx)."""

    detail: str = Field(description="What went wrong, in words; never a stack trace.")
    request_id: str | None = Field(default=None, description="The request's id (also in the `X-Request-ID` header), to quote to the operator.")


ERROR_DESCRIPTIONS = {
    "401": "No valid API key (`Authorization: Bearer ccp_...`): missing, malformed, unknown or revoked.",
    "403": "The key's role lacks the permission, or the port is not one of the caller's ports.",
    "404": "No such object visible to the caller (another port's object answers exactly like a missing one).",
    "409": "The request conflicts with a stored record.",
    "413": "The request body is larger than the configured limit.",
    "422": "The request is invalid; `detail` lists every problem with its location.",
    "429": "The key is over its rate limit; retry after `Retry-After` seconds.",
    "503": "Storage (or the model) is temporarily unavailable; retry after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}}

ROUTE_SPECIFIC: dict[tuple[str, str], list[str]] = {
    ("post", "/v1/inspection-outcomes"): ["400", "409"],
    ("post", "/v1/inspection-lists/{list_id}/amendments"): ["409"],
    ("post", "/v1/watchlist"): ["409"],
    ("post", "/v1/rules"): ["409"],
}
"""Statuses particular to a route (besides those of the layers in front of every route)."""
ERROR_DESCRIPTIONS["400"] = "A required header is missing or malformed (e.g. `Idempotency-Key`)."

GLOSSARY: dict[str, str] = {
    "action": "What happened or is asked, dotted lower case for audit events (`list.create`, `outcome.create` ...).",
    "actor": "Who acted: an API key id, or `cli:<user>` / `system`.",
    "alert_id": "Identifier of the watchlist alert, unique in the watchlist.",
    "artifact_sha256": "sha256 of the model artifact served.",
    "bad_records": "Every sealed record that fails verification, named.",
    "body": "The message body (depends on the message type).",
    "candidate_count": "Containers that were candidates for the list.",
    "capacity": "Exams the port can do that day (list length).",
    "change": "What changed in this version, in words.",
    "checks": "Result of each readiness check by name.",
    "code": "Code of the rule, unique in the rule set.",
    "concealment_method": "How the goods were hidden, free text.",
    "container": "ISO 6346 container number with a valid check digit.",
    "container_number": "ISO 6346 container number (owner code, category U/J/Z, serial, check digit); the check digit must be valid.",
    "content_sha256": "sha256 of the list's canonical JSON record, sealed in the audit trail when it was created.",
    "created_at": "When the record was created (UTC, ISO 8601).",
    "created_by": "API key id (or CLI user) that created the record.",
    "created_in_version": "Rule-set version that introduced the rule.",
    "ctx": "Extra context of the error.",
    "current": "Whether this is the current list of its port, date and direction (a newer list supersedes it).",
    "date": "Day the list is for (ISO 8601 date, the port's operational day).",
    "decision_at": "Instant of the targeting decision (UTC): only data available strictly before it was used.",
    "deferred": "Candidates not selected, with their scores (only with `include=deferred`).",
    "deferred_count": "Number of candidates not selected.",
    "detail": "Extra facts as JSON (no secrets).",
    "direction": "Flow the list targets: IMPORT, EXPORT or TRANSSHIPMENT.",
    "draft": "Whether the message is a draft awaiting approval.",
    "event_id": "Unique id (uuid4) of the audit event.",
    "exam_type": "Kind of examination: PHYSICAL or NII (non-intrusive imaging).",
    "examiner": "Identifier of the examining officer or team.",
    "expired_at": "When the record was expired (UTC); null while in force.",
    "expired_by": "API key id that expired the record.",
    "expired_in_version": "Rule-set version that expired the rule.",
    "exploration_share": "Share of the capacity given to a random slice (keeps the model honest).",
    "expression": "Rule condition in the rule language.",
    "first_bad_seq": "Sequence number of the first broken audit row; null when the chain is intact.",
    "hash": "Keyed hash (HMAC-SHA256) of this audit row chained to the previous one.",
    "head_hash": "Hash of the newest audit row; keep it outside the store to detect truncation.",
    "hit_rate": "Seizures divided by inspections.",
    "id": "Unique id of the record (uuid4).",
    "in_force": "Whether the entry is in force now.",
    "include_expired": "Also return expired entries.",
    "input": "The rejected input (never echoed by this service).",
    "input_data_sha256": "sha256 of the input data the list was computed from.",
    "integrity": "Seal and dwell trace of the container against the model's own norms: `surprisal` (higher is rarer), `p_value` (unusual below 0.01) and each measured component (value, tail probability, reference group, usual 5-95 % range); null when the model has no norms.",
    "integrity_share": "Share of the capacity given to the most unusual seal/dwell traces the model did not take (INTEGRITY; 0 for none); null on lists recorded before it existed.",
    "inspected_at": "When the exam took place (timezone-aware ISO 8601; stored in UTC).",
    "inspections": "Number of exams.",
    "issuing_unit": "Unit that issued the alert.",
    "item_count": "Number of selected containers in the list.",
    "items": "The entries of this page or record.",
    "kind": "What the watchlist value matches: CONTAINER, PARTY, BL, VESSEL, HS_CODE or ROUTE.",
    "level": "Scope of the rule: NATIONAL or PORT.",
    "limit": "Most items returned (page size).",
    "list_date": "Day the list is for.",
    "list_id": "Id (uuid) of the inspection list.",
    "loc": "Location of the problem.",
    "mandatory_exceeds_capacity": "Whether mandatory selections (watchlist) alone exceeded the capacity.",
    "manifest_id": "Identifier of the manifest (the consignment) in the lake.",
    "message_id": "Id of the exchange message.",
    "metrics": "Headline metrics of the model version.",
    "model_artifact_sha256": "sha256 of the model artifact used.",
    "model_name": "Registered model name.",
    "model_version": "Registered model version used.",
    "msg": "Human-readable message.",
    "name": "Name.",
    "next_after": "Pass as `after` to get the next page; null on the last page.",
    "nii_capacity": "Non-intrusive (imaging) exams available that day.",
    "object_id": "Id of the object acted on.",
    "object_type": "Type of the object acted on (`inspection_list`, `outcome`, ...).",
    "occurred_at": "When the event happened (UTC).",
    "offset": "Items skipped before the page.",
    "ok": "Whether everything verified.",
    "page": "Pagination of this response.",
    "physical_capacity": "Physical exams available that day.",
    "port": "UN/LOCODE of the port (2 letters + 3 of A-Z, 2-9), upper case.",
    "prev_hash": "Hash of the previous audit row (64 zeros for the first).",
    "problem": "What is wrong, in words.",
    "quantity_kg": "Seized quantity in kilograms.",
    "rank": "Position in the list (1 = examine first).",
    "ready": "Whether the service can answer every route.",
    "reason": "Why, in words (shown to officers).",
    "reasons": "Why the container was selected, most important first.",
    "recipients": "Units the message is addressed to.",
    "record": "The record, as `<type>:<id>`.",
    "records_checked": "Sealed records verified, per type.",
    "request_id": "Id of the request (`X-Request-ID`).",
    "result": "Result of the exam: NO_FINDING, SEIZURE or IRREGULARITY.",
    "role": "Role of the key: officer, data_scientist, auditor or admin.",
    "rows_checked": "Audit rows verified.",
    "rule": "The rule.",
    "rule_count": "Number of rules in the version.",
    "rule_hits": "Codes of the rules the container matches.",
    "rules": "The rules of the version.",
    "ruleset_hash": "sha256 of the rule set's canonical content.",
    "ruleset_version": "Rule-set version used or created.",
    "score": "Model risk score in [0, 1] (ranks candidates; not a probability: read `risk_probability`).",
    "risk_probability": "Calibrated probability that an exam of the container finds contraband (the model score mapped by the champion's own calibrator, fitted on held-out exams); null when the list is not rated (no model yet, or a model without a calibrator).",
    "risk_band": "Risk band of `risk_probability`: LOW (< 1%), MEDIUM (1-5%), HIGH (5-20%), VERY_HIGH (>= 20%), or NOT_RATED when there is no calibrated probability (day-one lists); null only on lists recorded before bands existed.",
    "calibrator_sha256": "sha256 of the calibrator that set the risk bands (part of the model version); empty when the list is not rated; null on lists recorded before bands existed.",
    "seal_status": "State of the container seal at the exam: INTACT, BROKEN, MISMATCH or MISSING.",
    "seed": "Seed of the random slice (same inputs and seed give the same list).",
    "seized_kg": "Total kilograms seized.",
    "seizure_category": "What was seized (e.g. COCAINE); required for a SEIZURE.",
    "seizures": "Number of exams with a seizure.",
    "selection_probability": "Probability the container had to be selected (1 for deterministic selections).",
    "selection_source": "Why the container was examined: WATCHLIST, RULE, MODEL, INTEGRITY, RANDOM or OFFICER.",
    "sender": "Unit that sent the message.",
    "seq": "Position of the row in the audit chain (1, 2, ...).",
    "severity": "Severity of the alert.",
    "since": "Start of the period (inclusive).",
    "source": "Why the container is on the list: WATCHLIST, RULE, MODEL, INTEGRITY (an unusual seal or dwell trace the model did not rank), RANDOM or OFFICER.",
    "source_if_selected": "The source the container would have had if selected.",
    "sources": "Figures per selection source.",
    "status": "State.",
    "status_code": "HTTP status returned.",
    "supersede_reason": "Why this list replaced the previous current one.",
    "superseded_by": "Id of the list that replaced this one as current; null while current.",
    "supersedes": "Id of the list this one replaced as current.",
    "tlp": "Traffic Light Protocol marking of the message.",
    "total": "Items in all pages.",
    "type": "Type.",
    "until": "End of the period (exclusive).",
    "valid_from": "Start of validity (UTC).",
    "valid_to": "End of validity (UTC); null for open-ended.",
    "value": "The value matched (normalised for its kind).",
    "version": "Version number.",
    "warnings": "Things the officer should know about this list.",
    "watchlist_hits": "Alert ids of the watchlist entries the container matches.",
    "weight": "Weight of the rule in the ranking.",
}
"""One description per field or parameter name (used where the model or route gives none)."""

QUALIFIED: dict[str, str] = {
    "AuditEventPublic.result": "Outcome of the action: ok, denied, not_found, invalid, conflict, unauthenticated or error.",
    "AuditEventPublic.port": "UN/LOCODE of the port the action concerned, if any.",
    "AuditEventPublic.role": "Role of the actor.",
    "ChainVerification.problem": "Why the first bad row is bad; null when the chain is intact.",
    "HTTPValidationError.detail": "Every problem found.",
    "Liveness.status": "`ok` when the process answers.",
    "ModelInfoPublic.name": "Registered model name.",
    "ModelInfoPublic.version": "Registered version served.",
    "ModelInfoPublic.source": "Where the served model was loaded from (registry or verified local copy).",
    "RuleChange.rule": "The rule created or expired.",
    "ErrorBody.detail": "What went wrong, in words; never a stack trace.",
}


def _describe_schemas(schema: dict[str, Any]) -> None:
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        for field, spec in component.get("properties", {}).items():
            if "description" in spec:
                continue
            text = QUALIFIED.get(f"{name}.{field}") or GLOSSARY.get(field)
            if text is not None:
                spec["description"] = text


def _error_response(status: str, ref: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": {"$ref": ref}}}}
    if status in ("429", "503"):
        response["headers"] = RETRY_AFTER
    return response


def _document_operation(
    operation: dict[str, Any], *, method: str, path: str, protected: bool, has_path_params: bool, max_page_size: int
) -> None:
    responses = operation.setdefault("responses", {})
    error_ref, invalid_ref = "#/components/schemas/ErrorResponse", "#/components/schemas/ValidationErrorBody"
    statuses = ["401", "403", "429", "503"] if protected else (["503"] if path.startswith("/v1/") else [])
    statuses += ROUTE_SPECIFIC.get((method, path), [])
    if path.startswith("/v1/exchange/"):
        statuses.append("404")  # an instance that does not exchange intelligence answers 404 on every exchange route
    if has_path_params:
        statuses.append("404")
    if "requestBody" in operation:
        statuses.append("413")
    for status in statuses:
        if status not in responses or "content" not in responses[status]:
            responses[status] = _error_response(status, error_ref)
        else:
            responses[status].setdefault("description", ERROR_DESCRIPTIONS[status])
            responses[status]["content"] = {"application/json": {"schema": {"$ref": error_ref}}}
            if status in ("429", "503"):
                responses[status]["headers"] = RETRY_AFTER
    if "requestBody" in operation or operation.get("parameters") or "422" in responses:
        responses["422"] = _error_response("422", invalid_ref)
    for status, response in responses.items():
        if status in ("400", "409") and "content" in response:
            response["content"] = {"application/json": {"schema": {"$ref": error_ref}}}
            response.setdefault("description", ERROR_DESCRIPTIONS.get(status, "Refused."))
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "limit" and parameter.get("in") == "query":
            _cap_limit(parameter.get("schema", {}), max_page_size)
        if "description" not in parameter and parameter["name"] in GLOSSARY:
            parameter["description"] = GLOSSARY[parameter["name"]]


def _cap_limit(schema: dict[str, Any], max_page_size: int) -> None:
    for candidate in [schema, *schema.get("anyOf", [])]:
        if candidate.get("type") == "integer" and candidate.get("maximum", 0) > max_page_size:
            candidate["maximum"] = max_page_size


def request_examples() -> dict[str, dict[str, Any]]:
    """A valid example body per request schema, shown by Swagger UI's "Try it out" (today from the engine's clock)."""
    today = clock.now().date().isoformat()
    return {
        "ListCreate": {"date": today, "capacity": 75, "nii_capacity": 60, "physical_capacity": 15, "exploration_share": 0.1, "direction": "IMPORT"},
    }


def _add_examples(schema: dict[str, Any]) -> None:
    examples = request_examples()
    for _, _, operation in ((p, m, o) for p, ops in schema.get("paths", {}).items() for m, o in ops.items()):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        ref = (content or {}).get("schema", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if content is not None and name in examples:
            content["example"] = examples[name]


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI description, completed as the module says."""
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ValidationProblem, ValidationErrorBody, ErrorResponse):
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    protected_paths: dict[tuple[str, str], bool] = {}
    for route in iter_app_routes(app):
        for method in getattr(route, "methods", None) or ():
            protected_paths[(route.path, method.lower())] = route_rules(route) != [PUBLIC]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            protected = protected_paths.get((path, method), True)
            _document_operation(
                operation, method=method, path=path, protected=protected, has_path_params="{" in path, max_page_size=settings.max_page_size
            )
    _describe_schemas(schema)
    _add_examples(schema)
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve :func:`build_openapi` (computed once) as the app's ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
