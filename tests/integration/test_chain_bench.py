"""Smoke run of ``python -m bench.chain`` at a small size: every phase runs and reports its figures."""

from __future__ import annotations

import pytest

from bench import chain

pytestmark = pytest.mark.integration


def test_chain_bench_small_run(pg_admin_dsn: str, kafka_bootstrap: str) -> None:
    args = chain.build_parser().parse_args(["--certificates", "3000", "--consumer", "300", "--readings", "200",
                                            "--samples", "20", "--partitions", "8", "--admin-dsn", pg_admin_dsn,
                                            "--kafka", kafka_bootstrap])
    figures = chain.run(args)
    assert figures["load"]["certificates"] == 3000 and figures["load"]["max_depth"] == 8
    assert figures["size"]["certificates_mb"] > 0 and figures["readings"] == 200
    for kind in ("trace_up_ms", "trace_down_ms", "recall_scope_ms", "verify_8_hops_ms"):
        assert figures["queries"][kind]["n"] == 20, kind
    province = figures["province_layout"]
    assert province["partitions"] == 8 and province["trace_up_ms"]["n"] == 20
    probes = province["up_8_hops_partition_probes"]
    assert probes["partitions_in_plan"] == 8  # (pruned at run time at scale; a tiny table may be scanned whole)
    assert figures["consumer"]["stored"] == 300 and figures["handler_only"]["accepted"] == 300
