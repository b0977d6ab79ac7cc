"""A job record's kind and door: written and read back, and what a record written before they
existed reads as."""

from __future__ import annotations

from shared.state.job_record import KINDS, Job, encode_fields
from shared.state.jobs import PUBLIC_FIELDS

OLD_RECORD = {  # as create.lua wrote one before jobs had a kind or a door
    "id": "job_1",
    "owner": "o",
    "status": "queued",
    "priority": "normal",
    "model": "m",
    "request": '{"messages":[]}',
    "created_at": "1.5",
    "deadline_at": "61.5",
    "attempts": "[]",
}


def test_a_record_without_a_kind_is_a_chat_job_with_no_door() -> None:
    job = Job.from_hash(OLD_RECORD)
    assert job.kind == "chat" and job.door == ""
    assert Job.from_hash({**OLD_RECORD, "kind": "", "door": ""}).kind == "chat"


def test_kind_and_door_round_trip_through_the_hash() -> None:
    job = Job.from_hash({**OLD_RECORD, "kind": "embeddings", "door": "embeddings"})
    again = Job.from_hash(encode_fields(vars(job)))
    assert (again.kind, again.door) == ("embeddings", "embeddings")


def test_the_job_object_shows_the_kind_after_object_and_never_the_door() -> None:
    public = Job.from_hash({**OLD_RECORD, "kind": "responses", "door": "responses"}).to_public()
    assert list(public)[:3] == ["id", "object", "kind"]
    assert public["kind"] == "responses" and "door" not in public
    assert Job.from_hash(OLD_RECORD).to_public()["kind"] == "chat"
    assert "kind" in PUBLIC_FIELDS and "door" not in PUBLIC_FIELDS


def test_chat_is_a_kind() -> None:
    assert KINDS[0] == "chat" and len(set(KINDS)) == len(KINDS)
