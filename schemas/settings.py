"""One typed settings object for every rapidtrace process (env prefix ``RT_``).

Loaded once at start with :func:`load_settings`; tests build one with keyword
arguments or pass an environment mapping.  A URL left unset means "start the
embedded component" (``rapidtrace up``) or "not configured" (single parts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RT_", extra="ignore")

    # --- services (unset: embedded, started by `rapidtrace up`) ---
    database_url: str | None = Field(None, description="PostgreSQL/TimescaleDB DSN")
    mqtt_url: str | None = Field(None, description="mqtt://[user:pass@]host:port")
    kafka_bootstrap: str | None = Field(None, description="host:port[,host:port]")

    # --- embedded stack ---
    data_dir: Path = Path(".rapidtrace")
    # auto: Mosquitto (project config) where installed, else amqtt (pure Python, MQTT 3.1.1)
    embedded_mqtt: Literal["auto", "mosquitto", "amqtt"] = "auto"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    mqtt_port: int = 11883
    kafka_port: int = 19092
    pg_port: int = 15432
    # `rapidtrace up`: a component that ran this long has its restart backoff reset
    supervise_stable_s: float = 60.0
    # `rapidtrace up` warns when the embedded Tansu's resident memory passes this (MiB)
    tansu_rss_warn_mb: int = 1024
    # `rapidtrace up --simulate`: readings per second of the simulated fleet; unset: the district
    # rate of DOMAIN.md section 5 (30 tests a station a day)
    fleet_rate: float | None = None
    # /healthz answers 503 this long after a consumer found its Kafka log started over
    kafka_reset_alert_s: float = 900.0

    # --- MQTT (bridge) ---
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    mqtt_client_id: str = "rapidtrace-bridge"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    # Shared-subscription group (MQTT 5 only); empty disables it.
    mqtt_shared_group: str = "rapidtrace"
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    mqtt_receive_maximum: int = 10000
    # The broker drops a client it has heard nothing from for 1.5 x this.
    mqtt_keepalive_s: int = Field(default=30, ge=1, le=65535)
    mqtt_topic_filter: str = "rt/v1/markets/+/stations/+/devices/+/readings"
    mqtt_certificate_filter: str = "rt/v1/markets/+/entry/+/certificates"
    # The device registry writes Mosquitto's password and ACL files here, then SIGHUPs the
    # Mosquitto whose pid file is given, so a revoked reader is refused without a restart.
    mqtt_password_file: Path | None = None
    mqtt_acl_file: Path | None = None
    mqtt_reload_pid_file: Path | None = None

    # --- Kafka ---
    topic_readings: str = "rt.readings.v1"
    topic_certificates: str = "rt.certificates.v1"
    topic_alerts: str = "rt.alerts.v1"
    topic_deadletter: str = "rt.deadletter.v1"
    topic_partitions: int = 3
    topic_replication: int = 1
    # 20 ms: fewer, fuller produce requests (less CPU in the bridge, the broker and the consumers'
    # fetches) for a latency the targets (publish -> row p99, positive -> SSE p99 < 1 s) do not feel.
    kafka_linger_ms: int = 20
    # gzip halves producer throughput here (11.7k vs 27.5k msgs/s); lz4 or zstd need their packages.
    kafka_compression: Literal["gzip", "lz4", "snappy", "zstd", "none"] = "none"
    kafka_max_poll_interval_ms: int = 300_000
    kafka_session_timeout_ms: int = 10_000
    kafka_fetch_max_wait_ms: int = 50
    kafka_retry_backoff_s: float = 0.5
    kafka_retry_backoff_max_s: float = 10.0

    # --- consumers ---
    consumer_batch_size: int = 2000
    consumer_poll_timeout_ms: int = 200
    consumer_group_prefix: str = "rapidtrace"
    # First-generation GC threshold of the bridge and consumers (runtime/gc_tuning.py); 0: CPython's 700.
    # 50000 makes the flagger 25% faster but tripled positive→SSE latency in the bench: off by default.
    gc_gen0_threshold: int = Field(default=0, ge=0)
    # A certificate record held this long for a parent that has not arrived raises a review failure.
    chain_held_review_after_s: float = Field(default=24 * 3600, gt=0)

    # --- storage ---
    timescale_compress_after: str = "7 days"
    timescale_retention: str = "3 years"
    timescale_chunk_interval: str = "1 day"

    # --- failure workflow (DOMAIN.md §3; domain/failures.py deadlines_from) ---
    objection_window_h: float = Field(default=4.0, gt=0)
    posting_hour_wholesale: int = Field(default=8, ge=0, le=23)
    posting_hour_farmers: int = Field(default=9, ge=0, le=23)
    deadline_timezone: str = "Asia/Shanghai"
    # A retest names a reading of the same sample_id, or of the same market, analyte and commodity
    # measured within this many hours after the first (uncertain: DOMAIN.md gives 3-15 min a test).
    retest_window_h: float = Field(default=2.0, gt=0)

    # --- API ---
    api_page_max: int = 1000
    api_page_default: int = 100
    api_auth: bool = True
    # HMAC key of console session cookies (api/web/console/session.py); unset: random per API process.
    console_secret: SecretStr | None = None
    # lifetime of issued API tokens in days (`--no-expiry` on issue for none)
    token_expiry_days: int = Field(default=90, ge=1)
    # GET /metrics asks for a token (any role) when true; /healthz never does
    metrics_require_token: bool = False
    # public pages (results board, certificate page): requests a minute per client address; the
    # address the certificate QR codes point at (default: the address the request came to)
    public_rate_per_minute: int = Field(120, ge=1)
    public_base_url: str | None = None

    def with_overrides(self, **changes: object) -> Settings:
        return self.model_copy(update=changes)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the process environment, or from ``env`` when given (tests)."""
    if env is None:
        return Settings()
    values = {k[3:].lower(): v for k, v in env.items() if k.startswith("RT_")}
    return Settings.model_validate(values)
