"""Inbound mail: IMAP fetching, parsing, classification, threading, routing, ingestion."""
