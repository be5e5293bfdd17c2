"""The committed gRPC code is what `make proto` generates from proto/patron.proto."""

import shutil
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).parents[1]
GENERATED = ("patron_pb2.py", "patron_pb2.pyi", "patron_pb2_grpc.py")


def test_generated_code_is_not_stale(tmp_path):
    (tmp_path / "proto").mkdir()
    shutil.copy(ROOT / "proto" / "patron.proto", tmp_path / "proto" / "patron.proto")
    include = str(Path(protoc.__file__).parent / "_proto")
    source = str(tmp_path / "proto" / "patron.proto")
    status = protoc.main(["protoc", f"-I{tmp_path}", f"-I{include}", f"--python_out={tmp_path}",
                          f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", source])
    assert status == 0
    for name in GENERATED:
        fresh = (tmp_path / "proto" / name).read_text()
        assert fresh == (ROOT / "proto" / name).read_text(), f"proto/{name} is stale: run `make proto`"


def test_the_contract_keeps_the_names_clients_depend_on():
    from proto import patron_pb2 as pb

    services = {s.name: [m.name for m in s.methods] for s in pb.DESCRIPTOR.services_by_name.values()}
    assert services["Ingest"] == ["SubmitBatch", "StreamBatches"]
    assert {"GetMember", "ListLedger", "Enroll", "EnrollBatch", "SetStatus", "Adjust"} <= set(services["Members"])
    assert {"PublishRules", "GetRules", "RunMidnight", "Checkpoint", "GetStatus"} <= set(services["Admin"])
    assert services["Wallet"] == ["Quote", "ListCoupons"]
    assert [f.name for f in pb.Transaction.DESCRIPTOR.fields][:11] == [
        "txn_id", "member_id", "occurred_at_ms", "kind", "status", "store_id", "channel", "lines", "refund_of",
        "event_type", "amount_minor"]
    assert pb.Kind.keys() == ["KIND_UNSPECIFIED", "KIND_PURCHASE", "KIND_REFUND", "KIND_EVENT", "KIND_RECHARGE",
                              "KIND_ADJUSTMENT", "KIND_REDEEM", "KIND_PAYMENT", "KIND_COUPON_ISSUE", "KIND_COUPON_USE"]
    assert [pb.Kind.Value(k) for k in ("KIND_REDEEM", "KIND_PAYMENT", "KIND_COUPON_ISSUE", "KIND_COUPON_USE")] == [
        6, 7, 8, 9]
    spending = {"Transaction": {"points": 3, "coupon_id": 9, "coupon_code": 9},
                "TxnResult": {"value_minor": 3, "coupon_code": 9},
                "Member": {"available_points": 3, "bonus_value_minor": 3, "tags": 9}}
    for message, fields in spending.items():
        found = getattr(pb, message).DESCRIPTOR.fields_by_name
        assert {name: found[name].type for name in fields} == fields  # 3: int64, 9: string
    assert pb.Outcome.keys() == ["OUTCOME_UNSPECIFIED", "OUTCOME_ACCEPTED", "OUTCOME_DUPLICATE", "OUTCOME_IGNORED",
                                 "OUTCOME_REJECTED"]


def test_every_method_of_the_contract_says_which_roles_may_call_it():
    """A method missing from the table would be open to anyone once tokens are on."""
    from actors.auth import METHOD_ROLES
    from proto import patron_pb2 as pb

    methods = {f"/{s.full_name}/{m.name}" for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert methods == set(METHOD_ROLES)
