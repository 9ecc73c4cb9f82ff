"""Kafka records as validated readings, for every consumer of ``rt.readings.v1``."""

from __future__ import annotations

from pydantic import ValidationError

from consumers.runner import PoisonRecord, Record
from schemas.common import describe_validation_error
from schemas.envelope import ReadingRecord, RecordError


def parse_reading(record: Record) -> ReadingRecord:
    """A Kafka record as a validated reading; anything else is a poison record (dead letter)."""
    try:
        return ReadingRecord.from_kafka(record.value, record.headers)
    except ValidationError as exc:
        raise PoisonRecord("invalid_reading", describe_validation_error(exc)) from exc
    except RecordError as exc:
        raise PoisonRecord("not_a_reading_record", str(exc)) from exc
