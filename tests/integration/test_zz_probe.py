from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for
import time
def test_probe(settings, pipeline, mqtt_broker):
    pipeline("store", "deadletters")
    nul = reading_payload(sample={"commodity": "leek\u0000x", "vendor_id": "stall-1"})
    after = reading_payload()
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(), encode(nul)), (reading_topic(), encode(after))])
    time.sleep(12)
    print(rows(settings.database_url, "SELECT reading_id, commodity FROM readings"))
    for r in rows(settings.database_url, "SELECT code, left(reason, 150), length(raw) FROM deadletters"): print(r)
