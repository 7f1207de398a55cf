"""The protocol core: framework-free, async, testable without HTTP."""
