"""Shared test code: corpus access, HTML safety checks and builders of test data."""
