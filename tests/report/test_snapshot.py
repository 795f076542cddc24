"""The docs' results come from a snapshot of the store: taking it and rendering from it gives what
rendering from the store gives, byte for byte, every time."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_a_snapshot_renders_what_the_store_renders(store):
    from siamese_bench.report.load import load_studies
    from siamese_bench.report.snapshot import dumps, results_markdown, snapshot, studies_from

    _, studies = load_studies([store.study], store.uri)
    text = dumps(snapshot(studies))
    assert text == dumps(snapshot(load_studies([store.study], store.uri)[1]))  # the same store: the same bytes
    restored = studies_from(json.loads(text))
    assert results_markdown(restored) == results_markdown(studies)
    assert len(restored[0].complete) == 6 and restored[0].cells == studies[0].cells
    assert "nan" not in text.lower()  # strict JSON: a missing value is null


def test_glance_names_each_verdict_and_its_interval(fake_run, fake_studies):
    from siamese_bench.report.findings import findings
    from siamese_bench.report.snapshot import glance

    runs = [
        fake_run("head=subtract-dense,loss=contrastive,margin=1", s, 0.5, start=s, metrics={"test/auc": 0.5 + s / 1000})
        for s in (0, 1, 2)
    ]
    table = glance(findings(fake_studies({"m": runs}, ["m"])))
    assert "| **C2**: " in table and "| reproduced | mnist-5k, 3 seeds (m) | AUC 0.501 [" in table
