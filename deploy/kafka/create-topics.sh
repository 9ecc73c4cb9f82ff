#!/usr/bin/env bash
# Create rapidtrace's Kafka topics with their partition counts and settings.
# Idempotent: an existing topic is left as it is (a partition count that differs
# is reported, never changed: adding partitions moves keys to other partitions,
# which breaks per-station ordering, so that is an operator's decision).
# Runs in the apache/kafka image as the `kafka-topics` one-shot of docker-compose.yml.
set -euo pipefail

bootstrap="${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is required, e.g. kafka:9092}"
partitions="${RT_TOPIC_PARTITIONS:-6}"
replication="${RT_TOPIC_REPLICATION:-1}"
min_isr="${RT_TOPIC_MIN_ISR:-1}"
topics_bin="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"

day_ms=86400000

# name partitions retention_ms
create_topic() {
    local name="$1" count="$2" retention_ms="$3"
    "$topics_bin" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$name" --partitions "$count" --replication-factor "$replication" \
        --config "min.insync.replicas=$min_isr" \
        --config "retention.ms=$retention_ms" \
        --config "compression.type=producer" \
        --config "max.message.bytes=1048576"
    local actual
    actual="$("$topics_bin" --bootstrap-server "$bootstrap" --describe --topic "$name" \
        | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)"
    if [ "$actual" != "$count" ]; then
        echo "WARNING: topic $name has $actual partitions, configured $count (left unchanged)" >&2
    else
        echo "topic $name: $count partitions, replication $replication, retention ${retention_ms} ms"
    fi
}

# Readings: the database is the system of record; Kafka keeps a week for replay.
create_topic "${RT_TOPIC_READINGS:-rt.readings.v1}" "$partitions" $((7 * day_ms))
create_topic "${RT_TOPIC_CERTIFICATES:-rt.certificates.v1}" "$partitions" $((30 * day_ms))
create_topic "${RT_TOPIC_ALERTS:-rt.alerts.v1}" "$partitions" $((7 * day_ms))
# Dead letters are never lost: a month in Kafka, forever in the database.
create_topic "${RT_TOPIC_DEADLETTER:-rt.deadletter.v1}" "${RT_TOPIC_DEADLETTER_PARTITIONS:-1}" $((30 * day_ms))
