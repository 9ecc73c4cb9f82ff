"""Every error rapidtrace raises on purpose, in one tree; ``retriable`` says whether trying again can help.

The tree (``[r]``: retriable, the same call may succeed later; every other error
fails the same way again until its input or the state changes)::

    RapidtraceError
    ├── Unavailable [r]                  a dependency is down, busy or too slow
    │   ├── StorageUnavailable [r]       (also a StorageError) connection refused or lost, server shutting
    │   │                                down, pool exhausted, deadlock, serialization failure
    │   └── KafkaUnavailable [r]         (also a KafkaFailure) no broker, request timed out, leader moving
    ├── StorageError                     the database failed an operation
    │   ├── StorageUnavailable [r]
    │   └── StorageRefused               the statement or its data is refused (constraint, type, SQL)
    ├── KafkaFailure                     Kafka failed an operation
    │   ├── KafkaUnavailable [r]
    │   └── KafkaRefused                 the record or request is refused (too large, unknown topic, ...)
    ├── MqttFailure                      the MQTT broker cannot be reached or refuses the client
    │   └── PublisherError               (simulators.publisher)
    ├── InvalidInput                     (also a ValueError) input outside the contract
    │   ├── RecordError                  (schemas.envelope) a Kafka record without its headers
    │   ├── PoisonRecord                 (consumers.runner) a record no retry can write: a dead letter
    │   ├── ThresholdError               (domain.judging) a threshold registry entry that cannot judge
    │   ├── CredentialError              (domain.device_acl) ids that cannot be an MQTT account
    │   ├── TokenRequestError            (domain.access) a token that cannot be issued as asked
    │   └── EvidenceMissing, RetestRefused  (also WorkflowErrors)
    ├── Conflict                         the request clashes with what is already there
    │   ├── DeviceExists                 (storage.devices)
    │   ├── ThresholdVersionExists       (storage.thresholds)
    │   └── WorkflowError                (domain.workflow) a failure's workflow refuses the action
    │       ├── TransitionRefused
    │       ├── EvidenceMissing, RetestRefused  (also InvalidInput)
    │       └── RoleRefused              (also AccessDenied)
    ├── AccessDenied                     who asks may not do this, or is not known
    │   ├── RoleRefused                  (also a WorkflowError)
    │   └── LoginRequired                (api.web.errors) a console page without a session
    ├── SetupError                       (also a RuntimeError) the stack cannot be started as configured
    │   ├── PortTakenError               (runtime.ports)
    │   ├── ComponentError               (runtime.embedded)
    │   └── TopicSetupError              (runtime.kafka_topics)
    └── ApiError                         (api.errors) an HTTP answer: status, code, message

Library errors are translated where the library is used, with the cause chained
(``raise StorageUnavailable(...) from e``): psycopg2 in ``storage/db.py``,
kafka-python in ``ingest/kafka_out.py``. Subclasses live beside the code that
raises them; this module, the lowest layer, holds the branches every layer may
import.
"""

from __future__ import annotations


class RapidtraceError(Exception):
    """The base of every error this project raises on purpose; a class or an instance may set ``retriable``."""

    retriable: bool = False


class Unavailable(RapidtraceError):
    """A dependency is down, busy or too slow; the same call may succeed later."""

    retriable = True


class StorageError(RapidtraceError):
    """The database failed an operation."""


class StorageUnavailable(Unavailable, StorageError):
    """The database cannot be reached or cannot take the statement now (retriable)."""


class StorageRefused(StorageError):
    """The database refuses the statement or its data; the same statement fails again."""


class KafkaFailure(RapidtraceError):
    """Kafka failed an operation."""


class KafkaUnavailable(Unavailable, KafkaFailure):
    """No broker answers in time, or the partition's leader is moving (retriable)."""


class KafkaRefused(KafkaFailure):
    """Kafka refuses the record or the request; sending it again fails again."""


class MqttFailure(RapidtraceError):
    """The MQTT broker cannot be reached or refuses the client."""


class InvalidInput(RapidtraceError, ValueError):
    """Input outside the contract: a request, a record, a setting, a registry entry."""


class Conflict(RapidtraceError):
    """The request clashes with what is already there (an existing row, a workflow state)."""


class AccessDenied(RapidtraceError):
    """Who asks is not known, or may not do this."""


class SetupError(RapidtraceError, RuntimeError):
    """The stack cannot be started as configured (a port taken, a component that does not come up)."""
