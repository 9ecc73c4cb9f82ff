"""The exception tree: every project error is a RapidtraceError, retriable exactly where a retry can help."""

from __future__ import annotations

import psycopg2
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from api.errors import ApiError, answer_of
from domain.access import TokenRequestError
from domain.device_acl import CredentialError
from domain.judging import ThresholdError
from domain.workflow import EvidenceMissing, RetestRefused, RoleRefused, TransitionRefused, WorkflowError
from ingest.kafka_out import kafka_error
from runtime.embedded import ComponentError
from runtime.kafka_topics import TopicSetupError
from runtime.ports import PortTakenError
from schemas import errors
from schemas.envelope import RecordError
from simulators.publisher import PublisherError
from storage.db import is_retriable, storage_error
from storage.devices import DeviceExists
from storage.thresholds import ThresholdVersionExists

FOLDED = [
    (RecordError, errors.InvalidInput), (ThresholdError, errors.InvalidInput),
    (CredentialError, errors.InvalidInput), (TokenRequestError, errors.InvalidInput),
    (DeviceExists, errors.Conflict), (PublisherError, errors.MqttFailure), (ApiError, errors.RapidtraceError),
    (PortTakenError, errors.SetupError), (ComponentError, errors.SetupError), (TopicSetupError, errors.SetupError),
    (ThresholdVersionExists, errors.Conflict), (WorkflowError, errors.Conflict), (TransitionRefused, WorkflowError),
    (RoleRefused, errors.AccessDenied), (EvidenceMissing, errors.InvalidInput), (RetestRefused, errors.InvalidInput),
]


@pytest.mark.parametrize(("cls", "branch"), FOLDED, ids=lambda c: c.__name__)
def test_every_project_error_sits_on_its_branch(cls: type[Exception], branch: type[Exception]) -> None:
    assert issubclass(cls, branch) and issubclass(cls, errors.RapidtraceError)


def test_value_and_runtime_errors_stay_what_they_were() -> None:
    """Callers catching ValueError or RuntimeError keep working."""
    assert issubclass(errors.InvalidInput, ValueError) and issubclass(RecordError, ValueError)
    assert issubclass(errors.SetupError, RuntimeError) and issubclass(PortTakenError, RuntimeError)


def test_only_unavailable_is_retriable() -> None:
    assert errors.StorageUnavailable("x").retriable and errors.KafkaUnavailable("x").retriable
    assert isinstance(errors.StorageUnavailable("x"), errors.StorageError)
    assert isinstance(errors.KafkaUnavailable("x"), errors.KafkaFailure)
    for cls in (errors.StorageRefused, errors.KafkaRefused, errors.InvalidInput, errors.Conflict, errors.AccessDenied):
        assert not cls("x").retriable


def test_psycopg2_errors_are_translated_by_whether_they_heal() -> None:
    lost = storage_error(psycopg2.OperationalError("server closed the connection unexpectedly"), "insert")
    assert isinstance(lost, errors.StorageUnavailable) and "insert" in str(lost) and is_retriable(lost)
    refused = storage_error(psycopg2.DataError("invalid input syntax for type uuid"))
    assert isinstance(refused, errors.StorageRefused) and not is_retriable(refused)


def test_kafka_errors_are_translated_by_kafka_pythons_retriable() -> None:
    assert isinstance(kafka_error(KafkaTimeoutError("no metadata")), errors.KafkaUnavailable)
    assert isinstance(kafka_error(MessageSizeTooLargeError("1 MB")), errors.KafkaRefused)
    assert isinstance(kafka_error(ValueError("RT_KAFKA_BOOTSTRAP is not set")), errors.KafkaUnavailable)


def test_the_api_answers_each_branch_with_its_status() -> None:
    assert answer_of(errors.StorageUnavailable("down")) == (503, "unavailable")
    assert answer_of(TokenRequestError("bad")) == (422, "invalid_request")
    assert answer_of(DeviceExists("R-1")) == (409, "conflict")
    assert answer_of(RoleRefused("no")) == (403, "role_not_allowed")  # a workflow refusal keeps its own status
    assert answer_of(EvidenceMissing("photo_ref")) == (422, "evidence_missing")
    assert answer_of(errors.AccessDenied("no")) == (403, "forbidden")
    assert answer_of(ApiError(404, "not_found", "none")) == (404, "not_found")
    assert answer_of(errors.StorageRefused("bad sql")) == (500, "internal_error")
