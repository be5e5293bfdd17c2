"""patron's Python client: `from client import PatronClient`."""

from client.patron_client import PatronClient, UnsendableError, sendable_token, transaction_message

__all__ = ["PatronClient", "UnsendableError", "sendable_token", "transaction_message"]
