"""Inbound mail: fetching, parsing, classifying and routing mail into tickets."""
