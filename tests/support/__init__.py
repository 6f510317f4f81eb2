"""Shared test code: corpus access, HTML safety checks, builders of test data, and the real
servers tests and benchmarks run against (Dovecot, OAuth 2.0, SendGrid stand-in, SMTP)."""
