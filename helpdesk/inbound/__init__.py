"""Inbound mail: fetching from IMAP, parsing, classifying, routing and ingesting."""
