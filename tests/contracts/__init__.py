"""Contract tests (run with `ape test tests/contracts`); a package so module names stay unique."""
