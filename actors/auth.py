"""Who may call what: bearer tokens with roles (ingest, read, admin), checked before any method
runs, and the TLS credentials of the gRPC port. Tokens never appear in logs or messages."""

import ipaddress
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from engine.errors import PatronError

__all__ = ["ROLES", "BearerTokens", "gateway_credentials", "is_loopback", "load_tokens", "refusal",
           "server_credentials"]

ROLES = ("ingest", "read", "admin")
_READ, _INGEST, _ADMIN = frozenset({"read", "ingest", "admin"}), frozenset({"ingest", "admin"}), frozenset({"admin"})
_REPORTS = frozenset({"read", "admin"})
METHOD_ROLES: dict[str, frozenset[str]] = {
    "/patron.v1.Ingest/SubmitBatch": _INGEST,
    "/patron.v1.Ingest/StreamBatches": _INGEST,
    "/patron.v1.Members/GetMember": _READ,
    "/patron.v1.Members/ListLedger": _REPORTS,
    "/patron.v1.Members/Enroll": _INGEST,
    "/patron.v1.Members/EnrollBatch": _INGEST,
    "/patron.v1.Members/SetStatus": _ADMIN,
    "/patron.v1.Members/SetTags": _ADMIN,
    "/patron.v1.Members/SetTier": _ADMIN,
    "/patron.v1.Members/Adjust": _ADMIN,
    "/patron.v1.Members/Import": _ADMIN,
    "/patron.v1.Admin/GetRules": _REPORTS,
    "/patron.v1.Admin/GetStatus": _REPORTS,
    "/patron.v1.Admin/GetAnomalyReport": _REPORTS,
    "/patron.v1.Admin/PublishRules": _ADMIN,
    "/patron.v1.Admin/RunMidnight": _ADMIN,
    "/patron.v1.Admin/Checkpoint": _ADMIN,
    "/patron.v1.Admin/MoveVirtualShard": _ADMIN,
    "/patron.v1.Admin/Rebalance": _ADMIN,
    "/patron.v1.Events/Subscribe": _REPORTS,
    "/patron.v1.Wallet/Quote": _READ,
    "/patron.v1.Wallet/ListCoupons": _READ,
}
"""Methods not listed (grpc.health.v1, reflection) are open, so probes and grpcurl work."""


def load_tokens(path: Path | None, environment: str | None = None) -> dict[str, str]:
    """token -> role, from a file (one `role token` per line, # comments) and from
    PATRON_TOKENS (`role:token,role:token`). Errors name the line, never the token."""
    tokens: dict[str, str] = {}
    if path is not None:
        for number, line in enumerate(_text(path).splitlines(), start=1):
            words = _COMMENT.split(line, maxsplit=1)[0].split()
            if words:
                _add(tokens, words, f"{path}:{number}")
    for number, pair in enumerate(filter(None, (environment or "").split(",")), start=1):
        _add(tokens, pair.strip().split(":", 1), f"PATRON_TOKENS entry {number}")
    return tokens


def _text(path: Path) -> str:
    """The file's text; one that is not UTF-8 is named by its line, not its bytes (a token's)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = error.object[:error.start].count(b"\n") + 1
        raise PatronError(f"{path}:{line}: not UTF-8 text; save the tokens file as UTF-8") from None
    except OSError as error:  # named as what it is: "/x: No such file" left an operator guessing (a probe)
        raise PatronError(f"--tokens {path}: cannot read the tokens file ({error.strerror})") from None


_COMMENT = re.compile(r"(?:^|\s)#")
"""A comment starts at a `#` that starts a word: one inside a token cut it short, and the full
token was refused while its first characters were let in (an outside probe)."""


def _add(tokens: dict[str, str], words: list[str], where: str) -> None:
    if len(words) != 2 or words[0] not in ROLES or len(words[1]) < 16:
        raise PatronError(f"{where}: expected a role ({', '.join(ROLES)}) and a token of at least "
                          f"16 characters")
    if not sendable(words[1]):  # taken, it refused every call, the banner counting it (an outside probe)
        raise PatronError(f"{where}: a token is printable ASCII without spaces, or no client can send it (entries "
                          f"of PATRON_TOKENS are separated by commas)")
    if tokens.get(words[1], words[0]) != words[0]:  # the last role won silently: `read` became `admin` (a probe)
        raise PatronError(f"{where}: this token is listed already with another role ({tokens[words[1]]}); give "
                          f"each token one role")
    tokens[words[1]] = words[0]


def sendable(token: str) -> bool:
    """Whether gRPC metadata can carry the token: printable ASCII, no spaces."""
    return all("!" <= character <= "~" for character in token)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_files(cert: Path, key: Path, client_ca: Path | None) -> None:
    """PatronError naming the files when they are not a certificate and its private key (or the
    client CA not certificates). gRPC says only that it failed to bind the port, and only once Ray
    has started and the data folder is made (an outside probe took it for a port in use)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # whether the pair is one, not this OpenSSL's view of its strength: gRPC serves a 1024-bit key
    # that security level 2 refuses (a review)
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:  # a key with a passphrase: refused (gRPC cannot use one), never a prompt on the terminal
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (ssl.SSLError, OSError) as error:
        raise PatronError(f"--tls-cert {cert} and --tls-key {key}: not a PEM certificate and its private key "
                          f"without a passphrase ({error})") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(client_ca)
        except (ssl.SSLError, OSError) as error:
            raise PatronError(f"--tls-client-ca {client_ca}: not PEM certificates ({error})") from None


def server_credentials(cert: Path, key: Path, client_ca: Path | None) -> grpc.ServerCredentials:
    """TLS with the server's certificate; with a client CA, clients must show a certificate it signed."""
    pair = [(key.read_bytes(), cert.read_bytes())]
    if client_ca is None:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(pair, root_certificates=client_ca.read_bytes(), require_client_auth=True)


def gateway_credentials(cert: Path, key: Path, client_ca: Path | None) -> grpc.ChannelCredentials:
    """How a node gateway reaches serve's gateway (admin calls) over TLS: trusting serve's
    certificate chain, and, when serve asks clients for certificates, showing that same
    certificate as its own. It showed none, and every admin call through it failed `UNAVAILABLE`
    under --tls-client-ca (an auth probe)."""
    chain = cert.read_bytes()
    if client_ca is None:
        return grpc.ssl_channel_credentials(chain)
    return grpc.ssl_channel_credentials(chain, private_key=key.read_bytes(), certificate_chain=chain)


class BearerTokens(grpc.aio.ServerInterceptor):
    """`authorization: Bearer <token>`: missing or unknown is UNAUTHENTICATED, a role that may
    not call the method is PERMISSION_DENIED."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        allowed = METHOD_ROLES.get(details.method)
        handler = await continuation(details)
        if allowed is None or handler is None:
            return handler
        token = _bearer(details.invocation_metadata or ())
        role = self.tokens.get(token)
        if role is None:
            return refusal(handler, grpc.StatusCode.UNAUTHENTICATED,
                            "missing or unknown bearer token: send `authorization: Bearer <token>`")
        if role not in allowed:
            return refusal(handler, grpc.StatusCode.PERMISSION_DENIED,
                            f"role {role!r} may not call {details.method}; it needs one of "
                            f"{', '.join(sorted(allowed))}")
        if handler.response_streaming:
            return self._while_valid(handler, token, allowed)
        return handler

    def _while_valid(self, handler: Any, token: str, allowed: frozenset[str]) -> Any:
        """A stream that ends once its token is retired (a reload): checked at each batch it sends
        and each answer it is given. Checked only when it opened, a retired token kept streaming
        batches in, and events out, until a restart (an outside probe)."""
        tokens = self.tokens

        def valid() -> bool:
            return tokens.get(token) in allowed

        async def ended(context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the bearer token was retired (the tokens were "
                                "reloaded): nothing sent after that was applied; open the stream again with a "
                                "valid token")

        async def requests_while_valid(requests: Any) -> Any:
            async for request in requests:
                if not valid():
                    return  # the batches before it are answered, then the stream ends
                yield request

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            async for answer in handler.stream_stream(requests_while_valid(requests), context):
                yield answer
            if not valid():
                await ended(context)

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async for answer in handler.unary_stream(request, context):
                if not valid():
                    await ended(context)
                yield answer

        if handler.request_streaming:
            return handler._replace(stream_stream=stream_stream)
        return handler._replace(unary_stream=unary_stream)


def _bearer(metadata: Any) -> str:
    """The token of `authorization: Bearer <token>`; the scheme's name in any case, as HTTP reads it
    (RFC 7235: `bearer` from a client library was refused)."""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return ""


def refusal(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    """A handler that refuses on the metadata alone. It takes the request as a stream it never
    reads, so gRPC calls it before the body arrives and nothing is parsed: a 60 MB request
    without a token costs no more than an empty one. (A unary handler would be called only
    once the whole body was received and deserialized.)"""
    async def refuse(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def refuse_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)
        yield  # an async generator, as streamed answers are

    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse_stream, response_serializer=handler.response_serializer)
    return grpc.stream_unary_rpc_method_handler(refuse, response_serializer=handler.response_serializer)


def tokens_from_environment() -> str | None:
    return os.environ.get("PATRON_TOKENS")
