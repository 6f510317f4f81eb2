"""Real servers the tests and benchmarks run against (Dovecot, an OAuth 2.0 endpoint)."""
