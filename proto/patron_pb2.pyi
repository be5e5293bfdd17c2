from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    KIND_PURCHASE: _ClassVar[Kind]
    KIND_REFUND: _ClassVar[Kind]
    KIND_EVENT: _ClassVar[Kind]
    KIND_RECHARGE: _ClassVar[Kind]
    KIND_ADJUSTMENT: _ClassVar[Kind]
    KIND_REDEEM: _ClassVar[Kind]
    KIND_PAYMENT: _ClassVar[Kind]
    KIND_COUPON_ISSUE: _ClassVar[Kind]
    KIND_COUPON_USE: _ClassVar[Kind]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_PAID: _ClassVar[Status]
    STATUS_PENDING: _ClassVar[Status]
    STATUS_CANCELLED: _ClassVar[Status]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_ACCEPTED: _ClassVar[Outcome]
    OUTCOME_DUPLICATE: _ClassVar[Outcome]
    OUTCOME_IGNORED: _ClassVar[Outcome]
    OUTCOME_REJECTED: _ClassVar[Outcome]

class StatusAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_ACTION_UNSPECIFIED: _ClassVar[StatusAction]
    STATUS_ACTION_FREEZE: _ClassVar[StatusAction]
    STATUS_ACTION_UNFREEZE: _ClassVar[StatusAction]
    STATUS_ACTION_REPORT_LOST: _ClassVar[StatusAction]
    STATUS_ACTION_CANCEL_LOST: _ClassVar[StatusAction]
    STATUS_ACTION_CLEAR_ABNORMAL: _ClassVar[StatusAction]
    STATUS_ACTION_RELEASE_HELD: _ClassVar[StatusAction]
    STATUS_ACTION_VOID_HELD: _ClassVar[StatusAction]
KIND_UNSPECIFIED: Kind
KIND_PURCHASE: Kind
KIND_REFUND: Kind
KIND_EVENT: Kind
KIND_RECHARGE: Kind
KIND_ADJUSTMENT: Kind
KIND_REDEEM: Kind
KIND_PAYMENT: Kind
KIND_COUPON_ISSUE: Kind
KIND_COUPON_USE: Kind
STATUS_UNSPECIFIED: Status
STATUS_PAID: Status
STATUS_PENDING: Status
STATUS_CANCELLED: Status
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_ACCEPTED: Outcome
OUTCOME_DUPLICATE: Outcome
OUTCOME_IGNORED: Outcome
OUTCOME_REJECTED: Outcome
STATUS_ACTION_UNSPECIFIED: StatusAction
STATUS_ACTION_FREEZE: StatusAction
STATUS_ACTION_UNFREEZE: StatusAction
STATUS_ACTION_REPORT_LOST: StatusAction
STATUS_ACTION_CANCEL_LOST: StatusAction
STATUS_ACTION_CLEAR_ABNORMAL: StatusAction
STATUS_ACTION_RELEASE_HELD: StatusAction
STATUS_ACTION_VOID_HELD: StatusAction

class LineItem(_message.Message):
    __slots__ = ("sku", "product_id", "category", "name", "paid_minor", "quantity", "promotional", "member_discounted")
    SKU_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAID_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MEMBER_DISCOUNTED_FIELD_NUMBER: _ClassVar[int]
    sku: str
    product_id: str
    category: str
    name: str
    paid_minor: int
    quantity: int
    promotional: bool
    member_discounted: bool
    def __init__(self, sku: _Optional[str] = ..., product_id: _Optional[str] = ..., category: _Optional[str] = ..., name: _Optional[str] = ..., paid_minor: _Optional[int] = ..., quantity: _Optional[int] = ..., promotional: _Optional[bool] = ..., member_discounted: _Optional[bool] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("txn_id", "member_id", "occurred_at_ms", "kind", "status", "store_id", "channel", "lines", "refund_of", "event_type", "amount_minor", "note", "points", "coupon_id", "coupon_code")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REFUND_OF_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODE_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    member_id: str
    occurred_at_ms: int
    kind: Kind
    status: Status
    store_id: str
    channel: str
    lines: _containers.RepeatedCompositeFieldContainer[LineItem]
    refund_of: str
    event_type: str
    amount_minor: int
    note: str
    points: int
    coupon_id: str
    coupon_code: str
    def __init__(self, txn_id: _Optional[str] = ..., member_id: _Optional[str] = ..., occurred_at_ms: _Optional[int] = ..., kind: _Optional[_Union[Kind, str]] = ..., status: _Optional[_Union[Status, str]] = ..., store_id: _Optional[str] = ..., channel: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., refund_of: _Optional[str] = ..., event_type: _Optional[str] = ..., amount_minor: _Optional[int] = ..., note: _Optional[str] = ..., points: _Optional[int] = ..., coupon_id: _Optional[str] = ..., coupon_code: _Optional[str] = ...) -> None: ...

class TransactionBatch(_message.Message):
    __slots__ = ("batch_id", "transactions")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    def __init__(self, batch_id: _Optional[str] = ..., transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ...) -> None: ...

class TxnResult(_message.Message):
    __slots__ = ("txn_id", "outcome", "points", "growth", "reason", "value_minor", "coupon_code")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODE_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    outcome: Outcome
    points: int
    growth: int
    reason: str
    value_minor: int
    coupon_code: str
    def __init__(self, txn_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., points: _Optional[int] = ..., growth: _Optional[int] = ..., reason: _Optional[str] = ..., value_minor: _Optional[int] = ..., coupon_code: _Optional[str] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("batch_id", "results")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    results: _containers.RepeatedCompositeFieldContainer[TxnResult]
    def __init__(self, batch_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[TxnResult, _Mapping]]] = ...) -> None: ...

class GetMemberRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("text", "number", "date")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    text: str
    number: float
    date: str
    def __init__(self, text: _Optional[str] = ..., number: _Optional[float] = ..., date: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("member_id", "tier", "points", "growth", "status", "abnormal", "tier_valid_until", "pending_points", "stored_value", "birthday", "enrolled_on", "source", "content", "campaign", "channel", "attributes", "tags", "available_points", "bonus_value_minor", "coupons", "held_points")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ABNORMAL_FIELD_NUMBER: _ClassVar[int]
    TIER_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_ON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    BONUS_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    HELD_POINTS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    points: int
    growth: int
    status: str
    abnormal: bool
    tier_valid_until: str
    pending_points: int
    stored_value: int
    birthday: str
    enrolled_on: str
    source: str
    content: str
    campaign: str
    channel: str
    attributes: _containers.MessageMap[str, AttributeValue]
    tags: _containers.RepeatedScalarFieldContainer[str]
    available_points: int
    bonus_value_minor: int
    coupons: _containers.RepeatedCompositeFieldContainer[CouponInstance]
    held_points: int
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., points: _Optional[int] = ..., growth: _Optional[int] = ..., status: _Optional[str] = ..., abnormal: _Optional[bool] = ..., tier_valid_until: _Optional[str] = ..., pending_points: _Optional[int] = ..., stored_value: _Optional[int] = ..., birthday: _Optional[str] = ..., enrolled_on: _Optional[str] = ..., source: _Optional[str] = ..., content: _Optional[str] = ..., campaign: _Optional[str] = ..., channel: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., tags: _Optional[_Iterable[str]] = ..., available_points: _Optional[int] = ..., bonus_value_minor: _Optional[int] = ..., coupons: _Optional[_Iterable[_Union[CouponInstance, _Mapping]]] = ..., held_points: _Optional[int] = ...) -> None: ...

class CouponInstance(_message.Message):
    __slots__ = ("code", "coupon_id", "status", "valid_from", "valid_to")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    code: str
    coupon_id: str
    status: str
    valid_from: str
    valid_to: str
    def __init__(self, code: _Optional[str] = ..., coupon_id: _Optional[str] = ..., status: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ...) -> None: ...

class ListLedgerRequest(_message.Message):
    __slots__ = ("member_id", "after_seq", "limit")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    after_seq: int
    limit: int
    def __init__(self, member_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("member_id", "seq", "day", "cause", "ref", "rule_version", "kind", "points", "pending_points", "growth", "stored_value", "tier_from", "tier_to", "status", "unrecovered", "note", "why", "bonus_value", "coupon_code", "lots", "refund_of")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIER_FROM_FIELD_NUMBER: _ClassVar[int]
    TIER_TO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNRECOVERED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    BONUS_VALUE_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODE_FIELD_NUMBER: _ClassVar[int]
    LOTS_FIELD_NUMBER: _ClassVar[int]
    REFUND_OF_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    seq: int
    day: str
    cause: str
    ref: str
    rule_version: int
    kind: str
    points: int
    pending_points: int
    growth: int
    stored_value: int
    tier_from: str
    tier_to: str
    status: str
    unrecovered: int
    note: str
    why: str
    bonus_value: int
    coupon_code: str
    lots: _containers.RepeatedCompositeFieldContainer[LotChange]
    refund_of: str
    def __init__(self, member_id: _Optional[str] = ..., seq: _Optional[int] = ..., day: _Optional[str] = ..., cause: _Optional[str] = ..., ref: _Optional[str] = ..., rule_version: _Optional[int] = ..., kind: _Optional[str] = ..., points: _Optional[int] = ..., pending_points: _Optional[int] = ..., growth: _Optional[int] = ..., stored_value: _Optional[int] = ..., tier_from: _Optional[str] = ..., tier_to: _Optional[str] = ..., status: _Optional[str] = ..., unrecovered: _Optional[int] = ..., note: _Optional[str] = ..., why: _Optional[str] = ..., bonus_value: _Optional[int] = ..., coupon_code: _Optional[str] = ..., lots: _Optional[_Iterable[_Union[LotChange, _Mapping]]] = ..., refund_of: _Optional[str] = ...) -> None: ...

class LotChange(_message.Message):
    __slots__ = ("expires", "points")
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    expires: str
    points: int
    def __init__(self, expires: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("member_id", "channel", "birthday", "source", "content", "campaign", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    channel: str
    birthday: str
    source: str
    content: str
    campaign: str
    attributes: _containers.MessageMap[str, AttributeValue]
    def __init__(self, member_id: _Optional[str] = ..., channel: _Optional[str] = ..., birthday: _Optional[str] = ..., source: _Optional[str] = ..., content: _Optional[str] = ..., campaign: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("member", "created", "error")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    member: Member
    created: bool
    error: str
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., created: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class EnrollBatchRequest(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[EnrollRequest]
    def __init__(self, members: _Optional[_Iterable[_Union[EnrollRequest, _Mapping]]] = ...) -> None: ...

class EnrollBatchResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[EnrollResponse]
    def __init__(self, members: _Optional[_Iterable[_Union[EnrollResponse, _Mapping]]] = ...) -> None: ...

class OpeningBalance(_message.Message):
    __slots__ = ("member", "tier", "tier_valid_until", "points", "stored_value", "bonus_value", "growth", "status")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    BONUS_VALUE_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    member: EnrollRequest
    tier: str
    tier_valid_until: str
    points: _containers.RepeatedCompositeFieldContainer[LotChange]
    stored_value: int
    bonus_value: int
    growth: int
    status: str
    def __init__(self, member: _Optional[_Union[EnrollRequest, _Mapping]] = ..., tier: _Optional[str] = ..., tier_valid_until: _Optional[str] = ..., points: _Optional[_Iterable[_Union[LotChange, _Mapping]]] = ..., stored_value: _Optional[int] = ..., bonus_value: _Optional[int] = ..., growth: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("import_id", "members", "rows")
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    import_id: str
    members: _containers.RepeatedCompositeFieldContainer[OpeningBalance]
    rows: bytes
    def __init__(self, import_id: _Optional[str] = ..., members: _Optional[_Iterable[_Union[OpeningBalance, _Mapping]]] = ..., rows: _Optional[bytes] = ...) -> None: ...

class ImportRejection(_message.Message):
    __slots__ = ("index", "reason", "detail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: str
    detail: str
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ("imported", "imported_before", "rejected")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    imported: int
    imported_before: int
    rejected: _containers.RepeatedCompositeFieldContainer[ImportRejection]
    def __init__(self, imported: _Optional[int] = ..., imported_before: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[ImportRejection, _Mapping]]] = ...) -> None: ...

class SetStatusRequest(_message.Message):
    __slots__ = ("member_id", "action", "reason")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    action: StatusAction
    reason: str
    def __init__(self, member_id: _Optional[str] = ..., action: _Optional[_Union[StatusAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetTagsRequest(_message.Message):
    __slots__ = ("member_id", "add", "remove", "reason")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    add: _containers.RepeatedScalarFieldContainer[str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, member_id: _Optional[str] = ..., add: _Optional[_Iterable[str]] = ..., remove: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetTierRequest(_message.Message):
    __slots__ = ("member_id", "tier", "reason")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    reason: str
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AdjustRequest(_message.Message):
    __slots__ = ("member_id", "request_id", "points", "reason")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    request_id: str
    points: int
    reason: str
    def __init__(self, member_id: _Optional[str] = ..., request_id: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class AdjustResponse(_message.Message):
    __slots__ = ("result", "member")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    result: TxnResult
    member: Member
    def __init__(self, result: _Optional[_Union[TxnResult, _Mapping]] = ..., member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...

class PublishRulesRequest(_message.Message):
    __slots__ = ("rules_toml", "count_past_spend")
    RULES_TOML_FIELD_NUMBER: _ClassVar[int]
    COUNT_PAST_SPEND_FIELD_NUMBER: _ClassVar[int]
    rules_toml: str
    count_past_spend: bool
    def __init__(self, rules_toml: _Optional[str] = ..., count_past_spend: _Optional[bool] = ...) -> None: ...

class PublishRulesResponse(_message.Message):
    __slots__ = ("version", "reevaluating")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REEVALUATING_FIELD_NUMBER: _ClassVar[int]
    version: int
    reevaluating: bool
    def __init__(self, version: _Optional[int] = ..., reevaluating: _Optional[bool] = ...) -> None: ...

class GetRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Rules(_message.Message):
    __slots__ = ("version", "rules_toml", "published_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_TOML_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    rules_toml: str
    published_at: str
    def __init__(self, version: _Optional[int] = ..., rules_toml: _Optional[str] = ..., published_at: _Optional[str] = ...) -> None: ...

class RunMidnightRequest(_message.Message):
    __slots__ = ("date", "allow_future", "background")
    DATE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FUTURE_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    date: str
    allow_future: bool
    background: bool
    def __init__(self, date: _Optional[str] = ..., allow_future: _Optional[bool] = ..., background: _Optional[bool] = ...) -> None: ...

class RunMidnightResponse(_message.Message):
    __slots__ = ("dates", "members_processed", "anomalies", "seconds", "running", "until")
    DATES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    dates: _containers.RepeatedScalarFieldContainer[str]
    members_processed: int
    anomalies: int
    seconds: float
    running: bool
    until: str
    def __init__(self, dates: _Optional[_Iterable[str]] = ..., members_processed: _Optional[int] = ..., anomalies: _Optional[int] = ..., seconds: _Optional[float] = ..., running: _Optional[bool] = ..., until: _Optional[str] = ...) -> None: ...

class MidnightProgress(_message.Message):
    __slots__ = ("running", "until", "dates", "date", "members_done", "members_total", "members_processed", "anomalies", "seconds", "error")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    DATES_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_DONE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    running: bool
    until: str
    dates: _containers.RepeatedScalarFieldContainer[str]
    date: str
    members_done: int
    members_total: int
    members_processed: int
    anomalies: int
    seconds: float
    error: str
    def __init__(self, running: _Optional[bool] = ..., until: _Optional[str] = ..., dates: _Optional[_Iterable[str]] = ..., date: _Optional[str] = ..., members_done: _Optional[int] = ..., members_total: _Optional[int] = ..., members_processed: _Optional[int] = ..., anomalies: _Optional[int] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("name", "bytes", "kept")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    bytes: int
    kept: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., bytes: _Optional[int] = ..., kept: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShardStatus(_message.Message):
    __slots__ = ("shard", "ready", "members", "transactions", "business_day", "rule_version", "disk_bytes", "node", "member_bytes", "priority", "huge_pages", "down")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_DAY_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_BYTES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    HUGE_PAGES_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    shard: int
    ready: bool
    members: int
    transactions: int
    business_day: str
    rule_version: int
    disk_bytes: int
    node: str
    member_bytes: int
    priority: str
    huge_pages: str
    down: str
    def __init__(self, shard: _Optional[int] = ..., ready: _Optional[bool] = ..., members: _Optional[int] = ..., transactions: _Optional[int] = ..., business_day: _Optional[str] = ..., rule_version: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., node: _Optional[str] = ..., member_bytes: _Optional[int] = ..., priority: _Optional[str] = ..., huge_pages: _Optional[str] = ..., down: _Optional[str] = ...) -> None: ...

class Recalculation(_message.Message):
    __slots__ = ("running", "version", "members_done", "members_total")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_DONE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    running: bool
    version: int
    members_done: int
    members_total: int
    def __init__(self, running: _Optional[bool] = ..., version: _Optional[int] = ..., members_done: _Optional[int] = ..., members_total: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("rule_version", "shards", "recalculation", "virtual_shards", "members_per_tag", "midnight", "resharding", "data_id")
    class MembersPerTagEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    RECALCULATION_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_SHARDS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_PER_TAG_FIELD_NUMBER: _ClassVar[int]
    MIDNIGHT_FIELD_NUMBER: _ClassVar[int]
    RESHARDING_FIELD_NUMBER: _ClassVar[int]
    DATA_ID_FIELD_NUMBER: _ClassVar[int]
    rule_version: int
    shards: _containers.RepeatedCompositeFieldContainer[ShardStatus]
    recalculation: Recalculation
    virtual_shards: int
    members_per_tag: _containers.ScalarMap[str, int]
    midnight: MidnightProgress
    resharding: Resharding
    data_id: str
    def __init__(self, rule_version: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[ShardStatus, _Mapping]]] = ..., recalculation: _Optional[_Union[Recalculation, _Mapping]] = ..., virtual_shards: _Optional[int] = ..., members_per_tag: _Optional[_Mapping[str, int]] = ..., midnight: _Optional[_Union[MidnightProgress, _Mapping]] = ..., resharding: _Optional[_Union[Resharding, _Mapping]] = ..., data_id: _Optional[str] = ...) -> None: ...

class Resharding(_message.Message):
    __slots__ = ("running", "shards", "planned", "done", "members_moved", "virtual_shard", "to", "seconds", "error", "owned")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_MOVED_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_SHARD_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OWNED_FIELD_NUMBER: _ClassVar[int]
    running: bool
    shards: int
    planned: int
    done: int
    members_moved: int
    virtual_shard: int
    to: int
    seconds: float
    error: str
    owned: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, running: _Optional[bool] = ..., shards: _Optional[int] = ..., planned: _Optional[int] = ..., done: _Optional[int] = ..., members_moved: _Optional[int] = ..., virtual_shard: _Optional[int] = ..., to: _Optional[int] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ..., owned: _Optional[_Iterable[int]] = ...) -> None: ...

class MoveVirtualShardRequest(_message.Message):
    __slots__ = ("virtual_shard", "to")
    VIRTUAL_SHARD_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    virtual_shard: int
    to: int
    def __init__(self, virtual_shard: _Optional[int] = ..., to: _Optional[int] = ...) -> None: ...

class RebalanceRequest(_message.Message):
    __slots__ = ("shards",)
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    shards: int
    def __init__(self, shards: _Optional[int] = ...) -> None: ...

class GetAnomalyReportRequest(_message.Message):
    __slots__ = ("date",)
    DATE_FIELD_NUMBER: _ClassVar[int]
    date: str
    def __init__(self, date: _Optional[str] = ...) -> None: ...

class AnomalyRow(_message.Message):
    __slots__ = ("member_id", "day", "points", "transactions")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    day: str
    points: int
    transactions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, member_id: _Optional[str] = ..., day: _Optional[str] = ..., points: _Optional[int] = ..., transactions: _Optional[_Iterable[str]] = ...) -> None: ...

class AnomalyReport(_message.Message):
    __slots__ = ("date", "rows")
    DATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    date: str
    rows: _containers.RepeatedCompositeFieldContainer[AnomalyRow]
    def __init__(self, date: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[AnomalyRow, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("after", "kinds")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    after: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, after: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("position", "kind", "member_id", "day", "detail", "at_ms")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    position: str
    kind: str
    member_id: str
    day: str
    detail: str
    at_ms: int
    def __init__(self, position: _Optional[str] = ..., kind: _Optional[str] = ..., member_id: _Optional[str] = ..., day: _Optional[str] = ..., detail: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("member_id", "lines", "occurred_at_ms")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    lines: _containers.RepeatedCompositeFieldContainer[LineItem]
    occurred_at_ms: int
    def __init__(self, member_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., occurred_at_ms: _Optional[int] = ...) -> None: ...

class QuotedLine(_message.Message):
    __slots__ = ("line", "price_minor")
    LINE_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    line: LineItem
    price_minor: int
    def __init__(self, line: _Optional[_Union[LineItem, _Mapping]] = ..., price_minor: _Optional[int] = ...) -> None: ...

class HeldCoupon(_message.Message):
    __slots__ = ("instance", "kind", "value_minor", "percent", "gift_sku", "min_charge_minor", "designated")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    GIFT_SKU_FIELD_NUMBER: _ClassVar[int]
    MIN_CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    DESIGNATED_FIELD_NUMBER: _ClassVar[int]
    instance: CouponInstance
    kind: str
    value_minor: int
    percent: int
    gift_sku: str
    min_charge_minor: int
    designated: bool
    def __init__(self, instance: _Optional[_Union[CouponInstance, _Mapping]] = ..., kind: _Optional[str] = ..., value_minor: _Optional[int] = ..., percent: _Optional[int] = ..., gift_sku: _Optional[str] = ..., min_charge_minor: _Optional[int] = ..., designated: _Optional[bool] = ...) -> None: ...

class QuotedCoupon(_message.Message):
    __slots__ = ("coupon", "value_minor", "reason")
    COUPON_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    coupon: HeldCoupon
    value_minor: int
    reason: str
    def __init__(self, coupon: _Optional[_Union[HeldCoupon, _Mapping]] = ..., value_minor: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class QuoteResponse(_message.Message):
    __slots__ = ("member_id", "tier", "day", "lines", "total_minor", "member_total_minor", "points", "growth", "points_reason", "cash_points", "cash_value_minor", "cash_reason", "coupons", "unusable_coupons", "available_points", "stored_value", "bonus_value_minor")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    MEMBER_TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FIELD_NUMBER: _ClassVar[int]
    POINTS_REASON_FIELD_NUMBER: _ClassVar[int]
    CASH_POINTS_FIELD_NUMBER: _ClassVar[int]
    CASH_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CASH_REASON_FIELD_NUMBER: _ClassVar[int]
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    UNUSABLE_COUPONS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    BONUS_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    day: str
    lines: _containers.RepeatedCompositeFieldContainer[QuotedLine]
    total_minor: int
    member_total_minor: int
    points: int
    growth: int
    points_reason: str
    cash_points: int
    cash_value_minor: int
    cash_reason: str
    coupons: _containers.RepeatedCompositeFieldContainer[QuotedCoupon]
    unusable_coupons: _containers.RepeatedCompositeFieldContainer[QuotedCoupon]
    available_points: int
    stored_value: int
    bonus_value_minor: int
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., day: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[QuotedLine, _Mapping]]] = ..., total_minor: _Optional[int] = ..., member_total_minor: _Optional[int] = ..., points: _Optional[int] = ..., growth: _Optional[int] = ..., points_reason: _Optional[str] = ..., cash_points: _Optional[int] = ..., cash_value_minor: _Optional[int] = ..., cash_reason: _Optional[str] = ..., coupons: _Optional[_Iterable[_Union[QuotedCoupon, _Mapping]]] = ..., unusable_coupons: _Optional[_Iterable[_Union[QuotedCoupon, _Mapping]]] = ..., available_points: _Optional[int] = ..., stored_value: _Optional[int] = ..., bonus_value_minor: _Optional[int] = ...) -> None: ...

class ListCouponsRequest(_message.Message):
    __slots__ = ("member_id", "status")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    status: str
    def __init__(self, member_id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class CouponList(_message.Message):
    __slots__ = ("coupons",)
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    coupons: _containers.RepeatedCompositeFieldContainer[HeldCoupon]
    def __init__(self, coupons: _Optional[_Iterable[_Union[HeldCoupon, _Mapping]]] = ...) -> None: ...
