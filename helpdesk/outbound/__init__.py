"""Outbound mail: the backends that hand mail to a provider, and what they share."""
