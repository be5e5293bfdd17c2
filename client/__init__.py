"""patron's Python client: `from client import PatronClient`."""

from client.patron_client import PatronClient, transaction_message

__all__ = ["PatronClient", "transaction_message"]
