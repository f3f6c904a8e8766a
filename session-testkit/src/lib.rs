//! Conformance suites and test doubles (being written).
