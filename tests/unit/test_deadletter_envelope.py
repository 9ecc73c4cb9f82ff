"""The dead-letter envelope: v2 carries an id made where it is made; v1 values get one from content."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from schemas.deadletter import DeadLetter, content_id, deadletter_value

WHEN = datetime(2026, 11, 28, 8, 15, 3, 123456, tzinfo=UTC)


def test_every_dead_letter_made_gets_its_own_id():
    a = DeadLetter.model_validate_json(deadletter_value("mqtt", "rt/m/s/d/readings", b"{", "not_json", "x", WHEN))
    b = DeadLetter.model_validate_json(deadletter_value("mqtt", "rt/m/s/d/readings", b"{", "not_json", "x", WHEN))
    assert a.v == 2 and a.deadletter_id is not None
    assert a.identity() != b.identity()  # the same bytes dead-lettered twice are two dead letters
    assert a.raw() == b"{" and a.received_at == WHEN


def test_a_v1_value_gets_a_deterministic_id_from_its_content_and_time():
    v1 = {"v": 1, "source": "mqtt", "source_topic": "t", "code": "not_json", "reason": "r",
          "received_at": "2026-11-28T08:15:03.123456+00:00", "raw_b64": "ew=="}
    first = DeadLetter.model_validate_json(json.dumps(v1))
    again = DeadLetter.model_validate_json(json.dumps(v1))
    assert first.deadletter_id is None
    assert first.identity() == again.identity() == content_id("mqtt", "t", "not_json", "r", b"{", WHEN)
    later = DeadLetter.model_validate_json(json.dumps({**v1, "received_at": "2026-11-28T08:15:04+00:00"}))
    assert later.identity() != first.identity()


def test_an_id_given_is_kept():
    given = uuid.uuid4()
    value = deadletter_value("kafka", "rt.readings.v1", b"x", "unwritable", "r", WHEN, deadletter_id=given)
    assert DeadLetter.model_validate_json(value).identity() == given
