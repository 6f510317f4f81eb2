"""Reusable helpers for tests: corpus access, HTML safety checks, test-data builders."""
