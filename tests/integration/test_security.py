"""Who may connect and call what: bearer tokens with roles, TLS with real certificates made here."""

import json
import queue
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from actors.auth import gateway_credentials
from client import PatronClient
from client.patron_client import transaction_message
from engine.calendar import parse_day
from engine.errors import PatronError
from proto import patron_pb2 as pb
from proto import patron_pb2_grpc as rpc
from tests.builders import ms
from tests.calls import answer_before_the_body
from tests.conftest import EXAMPLE_RULES

TOKENS = {"ingest": "ingest-token-0123456789", "read": "read-token-0123456789", "admin": "admin-token-0123456789"}
PURCHASE = {"txn_id": "t1", "member_id": "m1", "occurred_at_ms": ms("2026-11-17 10:00"), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": 2900}]}


def write_tokens(folder: Path) -> Path:
    path = folder / "tokens"
    path.write_text("# role token\n" + "".join(f"{role} {token}\n" for role, token in TOKENS.items()))
    return path


@pytest.fixture(scope="module")
def token_server(ray_session, tmp_path_factory):
    """One server with tokens for the module's tests: those whose every call is refused, and the
    one that is let in (its member, "tokens-m1", is its own)."""
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "tokens", tokens_file=write_tokens(tmp_path_factory.mktemp("tokens")))


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, and a server (127.0.0.1) and a client certificate it signed; made once for the module's
    tests, which only read them."""
    tmp_path = tmp_path_factory.mktemp("certificates")
    files = {name: tmp_path / name for name in ("ca.key", "ca.pem", "server.key", "server.pem", "client.key",
                                                 "client.pem", "san.cnf")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files["ca.key"]), "-out",
            str(files["ca.pem"]), "-days", "2", "-subj", "/CN=patron test CA")
    files["san.cnf"].write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        request = tmp_path / f"{name}.csr"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files[f"{name}.key"]), "-out", str(request),
                "-subj", f"/CN=patron {name}")
        openssl("x509", "-req", "-in", str(request), "-CA", str(files["ca.pem"]), "-CAkey", str(files["ca.key"]),
                "-CAcreateserial", "-out", str(files[f"{name}.pem"]), "-days", "2", "-extfile", str(files["san.cnf"]))
    return files


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code()


def test_tokens_decide_who_may_call_what(token_server):
    server = token_server
    purchase = PURCHASE | {"txn_id": "tokens-t1", "member_id": "tokens-m1"}
    with PatronClient(server.address, retries=0) as anonymous:
        assert code_of(lambda: anonymous.submit([purchase])) == grpc.StatusCode.UNAUTHENTICATED
        assert anonymous.serving()  # health stays open for probes
    with PatronClient(server.address, token="not-a-real-token-at-all", retries=0) as stranger:
        assert code_of(lambda: stranger.member("tokens-m1")) == grpc.StatusCode.UNAUTHENTICATED
    with PatronClient(server.address, token=TOKENS["read"], retries=0) as reader:
        assert code_of(lambda: reader.submit([purchase])) == grpc.StatusCode.PERMISSION_DENIED
    with PatronClient(server.address, token=TOKENS["ingest"], retries=0) as till:
        assert till.submit([purchase]).results[0].points == 20
        assert code_of(lambda: till.adjust("tokens-m1", 5, "goodwill")) == grpc.StatusCode.PERMISSION_DENIED
    with PatronClient(server.address, token=TOKENS["read"]) as reader:
        assert reader.member("tokens-m1").points == 20
        assert reader.quote("tokens-m1", [{"sku": "S", "paid_minor": 2900}]).points == 20
    with PatronClient(server.address, token=TOKENS["ingest"], retries=0) as till:  # tills quote and list coupons
        assert till.quote("tokens-m1", [{"sku": "S", "paid_minor": 2900}]).available_points == 20
        assert [c.instance.coupon_id for c in till.coupons("tokens-m1")] == ["WELCOME10"]
    with PatronClient(server.address, retries=0) as anonymous:
        basket = [{"sku": "S", "paid_minor": 1}]
        assert code_of(lambda: anonymous.quote("tokens-m1", basket)) == grpc.StatusCode.UNAUTHENTICATED
    with PatronClient(server.address, token=TOKENS["admin"]) as admin:
        assert admin.adjust("tokens-m1", 5, "goodwill").member.points == 25



@pytest.mark.parametrize(("method", "streamed", "token", "code"), [
    ("/patron.v1.Ingest/SubmitBatch", False, "", grpc.StatusCode.UNAUTHENTICATED),
    ("/patron.v1.Ingest/SubmitBatch", False, TOKENS["read"], grpc.StatusCode.PERMISSION_DENIED),
    ("/patron.v1.Members/ListLedger", True, "", grpc.StatusCode.UNAUTHENTICATED),
], ids=["no token", "a role that may not", "no token, streamed answer"])
def test_a_refused_call_is_answered_on_its_metadata_before_its_body_is_sent(token_server, method,
                                                                           streamed, token, code):
    """Refused on the metadata alone, so a large request without a token is neither read nor parsed."""
    server = token_server
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    assert answer_before_the_body(server.address, method, streamed=streamed, metadata=metadata) == code


def test_a_large_request_without_a_token_is_refused_unauthenticated(token_server):
    server = token_server
    big = pb.TransactionBatch(batch_id="big", transactions=[
        pb.Transaction(txn_id=f"t{n}", member_id=f"m{n}", note="x" * 1000) for n in range(10_000)])
    with PatronClient(server.address, retries=0) as anonymous:
        assert code_of(lambda: anonymous.submit(big)) == grpc.StatusCode.UNAUTHENTICATED


def test_the_bearer_schemes_name_is_read_in_any_case(token_server):
    server = token_server
    for scheme in ("bearer", "BEARER", "Bearer"):  # RFC 7235; an outside probe's lower case was refused
        with PatronClient(server.address, retries=0) as reader:
            reader.metadata = (("authorization", f"{scheme} {TOKENS['read']}"),)
            assert reader.member("nobody") is None


def test_a_refusal_never_repeats_the_token(token_server):
    server = token_server
    with PatronClient(server.address, token=TOKENS["read"], retries=0) as reader, \
            pytest.raises(grpc.RpcError) as raised:
        reader.submit([PURCHASE])
    assert TOKENS["read"] not in raised.value.details()
    assert "role 'read' may not call /patron.v1.Ingest/SubmitBatch" in raised.value.details()


def test_tokens_also_come_from_the_environment(start_server, monkeypatch):
    monkeypatch.setenv("PATRON_TOKENS", f"ingest:{TOKENS['ingest']},admin:{TOKENS['admin']}")
    server = start_server(start_date=parse_day("2026-11-17"))
    with PatronClient(server.address, token=TOKENS["ingest"]) as till:
        assert till.submit([PURCHASE]).results[0].outcome == 1


def test_a_bad_token_file_names_the_line_and_not_the_token(tmp_path):
    from actors.auth import load_tokens

    path = tmp_path / "tokens"
    path.write_text("ingest ok-token-0123456789\nsuperuser secret-value-0123456789\n")
    with pytest.raises(PatronError) as raised:
        load_tokens(path)
    assert str(raised.value) == f"{path}:2: expected a role (ingest, read, admin) and a token of at least 16 characters"


def test_a_token_file_that_is_not_utf8_names_the_line_and_not_the_token(tmp_path):
    from actors.auth import load_tokens

    path = tmp_path / "tokens"
    path.write_bytes(b"ingest ok-token-0123456789\nadmin \xe9\xe9-secret-0123456789\n")
    with pytest.raises(PatronError) as raised:  # it was "unexpected UnicodeDecodeError", quoting a byte
        load_tokens(path)
    assert str(raised.value) == f"{path}:2: not UTF-8 text; save the tokens file as UTF-8"


def test_a_token_file_that_cannot_be_read_is_named_by_its_flag(tmp_path):
    from actors.auth import load_tokens

    missing = tmp_path / "missing"
    with pytest.raises(PatronError) as raised:  # it was "/x: No such file or directory" (an outside probe)
        load_tokens(missing)
    assert str(raised.value) == f"--tokens {missing}: cannot read the tokens file (No such file or directory)"


def test_a_token_listed_twice_is_refused_naming_its_second_line(tmp_path):
    """The last line's role won silently: a `read` token listed again as `admin` could call admin
    methods, the other way round lost them (an outside probe)."""
    from actors.auth import load_tokens

    path = tmp_path / "tokens"
    path.write_text("read shared-token-0123456789\ningest other-token-0123456789\nadmin shared-token-0123456789\n")
    with pytest.raises(PatronError) as raised:
        load_tokens(path)
    assert str(raised.value) == (f"{path}:3: this token is listed already with another role (read); give each token "
                                 f"one role")
    with pytest.raises(PatronError, match=r"^PATRON_TOKENS entry 2: this token is listed already with another role"):
        load_tokens(None, "read:shared-token-0123456789,admin:shared-token-0123456789")
    path.write_text("read shared-token-0123456789\nread shared-token-0123456789\n")  # the same twice: one token
    assert load_tokens(path) == {"shared-token-0123456789": "read"}


def test_a_hash_inside_a_token_is_part_of_it_and_a_token_no_client_can_send_is_refused(tmp_path):
    """A `#` inside a token cut it short (its first characters let in, the whole refused), and tokens
    no client can send were taken: PATRON_TOKENS given one per line became one admin token with
    line endings in it (an outside probe)."""
    from actors.auth import load_tokens

    path = tmp_path / "tokens"
    path.write_text("admin admin#token-0123456789  # the operators'\n#read read-token-0123456789\n")
    assert load_tokens(path) == {"admin#token-0123456789": "admin"}
    with pytest.raises(PatronError, match=r"^PATRON_TOKENS entry 1: a token is printable ASCII without spaces"):
        load_tokens(None, "admin:admin-token-0123456789\nread:read-token-0123456789")
    path.write_text("read read-token-0123456789\nadmin admin-tökén-0123456789\n")
    with pytest.raises(PatronError, match=rf"^{path}:2: a token is printable ASCII without spaces"):
        load_tokens(path)


def test_a_tokens_file_without_a_token_is_refused_at_start(tmp_path, monkeypatch):
    """It started a server every local caller could call as admin, the banner saying `auth NONE`
    while --tokens was given (an outside probe)."""
    from actors.config import ServeConfig
    from actors.server import refuse_before_start

    path = tmp_path / "tokens"
    path.write_text("# the tills' tokens go here\n")
    monkeypatch.delenv("PATRON_TOKENS", raising=False)
    config = ServeConfig(data=tmp_path / "data", rules=EXAMPLE_RULES, tokens_file=path, grpc_port=0, metrics_port=-1)
    with pytest.raises(PatronError, match=r"tokens has no token: give it a line `role token` for each client"):
        refuse_before_start(config)
    monkeypatch.setenv("PATRON_TOKENS", "admin:from-the-environment-0123")
    refuse_before_start(config)  # the tokens come from there: authentication is on, as a reload would keep it


def test_without_tokens_only_a_loopback_host_is_allowed(start_server):
    with pytest.raises(PatronError, match=r"refusing to listen on 0\.0\.0\.0 without authentication"):
        start_server(host="0.0.0.0")


def test_tls_with_the_servers_certificate(start_server, certificates):
    server = start_server(tls_cert=certificates["server.pem"], tls_key=certificates["server.key"],
                          start_date=parse_day("2026-11-17"))
    with PatronClient(server.address, root_certificates=certificates["ca.pem"].read_bytes()) as client:
        assert client.submit([PURCHASE]).results[0].points == 20
    with PatronClient(server.address, retries=0, timeout=5) as plaintext:
        assert code_of(lambda: plaintext.member("m1")) == grpc.StatusCode.UNAVAILABLE


def test_client_certificates_when_the_server_asks_for_them(start_server, certificates):
    server = start_server(tls_cert=certificates["server.pem"], tls_key=certificates["server.key"],
                          tls_client_ca=certificates["ca.pem"], start_date=parse_day("2026-11-17"))
    ca = certificates["ca.pem"].read_bytes()
    with PatronClient(server.address, root_certificates=ca, certificate_chain=certificates["client.pem"].read_bytes(),
                      private_key=certificates["client.key"].read_bytes()) as client:
        assert client.submit([PURCHASE]).results[0].points == 20
    with PatronClient(server.address, root_certificates=ca, retries=0, timeout=5) as without:
        assert code_of(lambda: without.member("m1")) == grpc.StatusCode.UNAVAILABLE


def test_a_node_gateway_reaches_a_server_that_asks_for_client_certificates(start_server, certificates, tmp_path):
    # a node gateway passes admin calls on to serve's gateway: it showed no certificate, and under
    # --tls-client-ca every one failed UNAVAILABLE (an auth probe)
    chain = tmp_path / "chain.pem"  # the full chain, as operations.md asks for node gateways
    chain.write_bytes(certificates["server.pem"].read_bytes() + certificates["ca.pem"].read_bytes())
    server = start_server(tls_cert=chain, tls_key=certificates["server.key"], tls_client_ca=certificates["ca.pem"],
                          start_date=parse_day("2026-11-17"))
    credentials = gateway_credentials(chain, certificates["server.key"], certificates["ca.pem"])
    with grpc.secure_channel(server.address, credentials) as channel:
        status = rpc.AdminStub(channel).GetStatus(pb.GetStatusRequest(), timeout=20)
    assert len(status.shards) == 2


def test_the_demo_load_with_tls_says_why_it_is_not_sent(serve_process, certificates, tmp_path):
    """Its client has no CA for the server's certificate: the load was silently never sent (an outside probe)."""
    from tests.integration.test_demo import wait_for_text

    serve = serve_process(tmp_path / "data", "--demo", "300", "--tls-cert", str(certificates["server.pem"]),
                          "--tls-key", str(certificates["server.key"]), rules=EXAMPLE_RULES)
    wait_for_text(serve, "no demo load with TLS: send one with `patron send --generate 300` and PATRON_TLS_CA")
    assert serve.terminate() == 0


class Reloads:
    """A served `patron serve --tokens FILE`, its tokens reloaded by SIGHUP."""

    def __init__(self, serve) -> None:
        self.serve = serve

    def status_code(self, token: str) -> grpc.StatusCode:
        with PatronClient(self.serve.address, token=token, retries=0, timeout=10) as client:
            try:
                client.status()
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    def answers(self) -> int:
        log = self.serve.log.read_text()
        return log.count('"msg": "tokens reloaded"') + log.count('"msg": "the tokens were not reloaded')

    def until(self, done, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert self.serve.process.poll() is None, self.serve.log.read_text()[-2000:]
            assert time.monotonic() < deadline, self.serve.log.read_text()[-2000:]
            time.sleep(0.05)

    def reloaded(self, count: int, token: str, code: grpc.StatusCode) -> None:
        self.serve.process.send_signal(signal.SIGHUP)
        self.until(lambda: self.answers() >= count and self.status_code(token) == code, 30)


def test_sighup_reloads_the_tokens_so_one_is_rotated_without_a_restart(serve_process, tmp_path):
    # the file was read at start only: adding a token and retiring one took a restart each (an outside probe)
    tokens = write_tokens(tmp_path)
    serve = serve_process(tmp_path / "data", "--tokens", str(tokens), rules=EXAMPLE_RULES, wait=False)
    reloads, new = Reloads(serve), "admin-token-rotated-0123"
    # a reload asked during the start (systemctl reload right after a start) ended serve, and systemd
    # left it down (an outside probe): the reload now waits for the start
    reloads.until(lambda: len(serve.session()) > 1)  # Ray's first process: serve is starting
    tokens.write_text(tokens.read_text() + f"admin {new}\n")  # the new token beside the old
    serve.process.send_signal(signal.SIGHUP)
    serve.address = f"127.0.0.1:{serve._port()}"
    with PatronClient(serve.address, token=TOKENS["admin"], retries=0, timeout=20) as client:
        client.wait_until_serving()
    reloads.until(reloads.answers)  # made right after the start
    assert reloads.status_code(new) == grpc.StatusCode.OK
    assert reloads.status_code(TOKENS["admin"]) == grpc.StatusCode.OK
    tokens.write_text(tokens.read_text() + f"read {new}-read\n")
    reloads.reloaded(2, f"{new}-read", grpc.StatusCode.OK)
    streams_of_a_retired_token_end(reloads, tokens, new)
    tokens.write_text("admin tooshort1\n")  # a file with problems changes nothing
    reloads.reloaded(4, new, grpc.StatusCode.OK)
    told = [json.loads(line) for line in serve.log.read_text().splitlines() if '"msg": "the tokens were not' in line]
    assert [line["msg"] for line in told] == ["the tokens were not reloaded; the ones in use are kept"]
    assert "expected a role" in told[0]["error"]
    assert "tooshort1" not in serve.log.read_text()  # never the token


def streams_of_a_retired_token_end(reloads: Reloads, tokens: Path, new: str) -> None:
    """Checked only when a call began, a retired token's streams went on taking batches in, and
    giving events out, until a restart (an outside probe). Retires TOKENS["admin"]."""
    address = reloads.serve.address
    channel = grpc.insecure_channel(address)
    old = (("authorization", f"Bearer {TOKENS['admin']}"),)
    sent: queue.Queue = queue.Queue()
    acks = rpc.IngestStub(channel).StreamBatches(iter(sent.get, None), metadata=old, timeout=60)
    events = rpc.EventsStub(channel).Subscribe(pb.SubscribeRequest(), metadata=old, timeout=60)

    def batch(n: int) -> pb.TransactionBatch:
        purchase = PURCHASE | {"txn_id": f"rotate-t{n}", "member_id": f"rotate-m{n}"}
        return pb.TransactionBatch(batch_id=f"rotate-{n}", transactions=[transaction_message(purchase)])

    sent.put(batch(1))
    assert next(acks).results[0].points == 20
    assert next(events).member_id == "rotate-m1"
    tokens.write_text(tokens.read_text().replace(f"admin {TOKENS['admin']}\n", ""))  # the old one retired
    reloads.reloaded(3, TOKENS["admin"], grpc.StatusCode.UNAUTHENTICATED)
    sent.put(batch(2))
    assert code_of(lambda: next(acks)) == grpc.StatusCode.UNAUTHENTICATED
    with PatronClient(address, token=new, retries=0, timeout=20) as admin:
        admin.submit([PURCHASE | {"txn_id": "rotate-t3", "member_id": "rotate-m3"}])  # an event for the old stream
        assert admin.member("rotate-m2") is None  # not applied
    assert code_of(lambda: list(events)) == grpc.StatusCode.UNAUTHENTICATED
    sent.put(None)
    channel.close()
