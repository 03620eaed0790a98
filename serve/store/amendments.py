"""Officer amendments of served lists: add a deferred candidate, or remove a selected item, with a reason.

A served list is immutable (content-hashed, replayable); an officer's
judgement is recorded beside it as an amendment with selection source
``OFFICER``. An addition must be one of the list's deferred candidates (a
container due at the port that day the engine did not select); a removal must
be one of its selected items. Each manifest can be added or removed at most
once per list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from serve.db import utcnow
from serve.tables import ListAmendment
from targeting.lists import InspectionList

ADD = "ADD"
REMOVE = "REMOVE"
ACTIONS = (ADD, REMOVE)


class AmendmentRefusedError(ValueError):
    """The amendment contradicts the list (``conflict`` tells a repeat from an invalid request)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(frozen=True)
class AmendmentRequest:
    """What the officer asks: ``action`` (``ADD``/``REMOVE``) of ``manifest_id`` on a list, and why."""

    action: str
    manifest_id: str
    reason: str
    exam_type: str | None = None


def _target(record: InspectionList, request: AmendmentRequest) -> tuple[str, float, str | None]:
    """``(container_number, score, exam_type)`` of the manifest the request is about; refuses what the list rules out."""
    selected = {i.manifest_id: i for i in record.items}
    if request.action == ADD:
        if request.manifest_id in selected:
            raise AmendmentRefusedError(f"manifest {request.manifest_id} is already on the list (rank {selected[request.manifest_id].rank})")
        deferred = next((d for d in record.deferred if d.manifest_id == request.manifest_id), None)
        if deferred is None:
            raise AmendmentRefusedError(f"manifest {request.manifest_id} is not a candidate of this list (not due at {record.port} on {record.list_date})")
        return deferred.container_number, deferred.score, request.exam_type
    if request.exam_type is not None:
        raise AmendmentRefusedError("exam_type is given only with an addition")
    item = selected.get(request.manifest_id)
    if item is None:
        raise AmendmentRefusedError(f"manifest {request.manifest_id} is not on the list")
    return item.container_number, item.score, item.exam_type


def amend_list(session: Session, list_id: str, record: InspectionList, request: AmendmentRequest, *, actor: str, at: datetime | None = None) -> ListAmendment:
    """Record ``request`` against the verified ``record`` of list ``list_id`` in a write unit of work.

    Raises
    ------
    AmendmentRefusedError
        When the manifest is not a candidate (addition) or not selected
        (removal), or was already added or removed (``conflict``).
    """
    if request.action not in ACTIONS:
        raise AmendmentRefusedError(f"action must be one of {', '.join(ACTIONS)}")
    container, score, exam_type = _target(record, request)
    repeat = session.scalar(
        select(ListAmendment.id).where(
            ListAmendment.list_id == list_id, ListAmendment.manifest_id == request.manifest_id, ListAmendment.action == request.action
        )
    )  # the write unit of work holds the store's write lock: nobody can insert it meanwhile
    if repeat is not None:
        verb = "added to" if request.action == ADD else "removed from"
        raise AmendmentRefusedError(f"manifest {request.manifest_id} was already {verb} this list", conflict=True)
    row = ListAmendment(
        id=str(uuid.uuid4()),
        list_id=list_id,
        action=request.action,
        manifest_id=request.manifest_id,
        container_number=container,
        score=score,
        exam_type=exam_type,
        reason=request.reason,
        created_at=at or utcnow(),
        created_by=actor,
        direction=record.direction,
    )
    session.add(row)
    session.flush()
    return row


def amendments_of(session: Session, list_id: str) -> list[ListAmendment]:
    """The amendments of list ``list_id``, oldest first."""
    return list(session.scalars(select(ListAmendment).where(ListAmendment.list_id == list_id).order_by(ListAmendment.created_at, ListAmendment.id)))
