"""Conformance tests: the exact result of every Delta operation the lake relies on, on the
embedded engine (Sail), each table read back with delta-rs (`deltalake`) as an independent
reader. An engine upgrade that changes a result must fail here. Findings: docs/engine.md."""
