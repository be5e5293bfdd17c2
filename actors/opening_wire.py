"""An import's rows as they cross from the gateway to a shard: MessagePack arrays of engine
rows (engine.opening.Opening), as `patron import` sends them in an ImportRequest's `rows`; the
gateway decodes them once to route each member, and encodes each shard's part again (C code
both ways, no message per row). Rows given as protobuf `members` are made into the same engine
rows first. The shard answers only the rows it did not import."""

import msgspec

from engine.errors import InvalidRequestError
from engine.opening import Opening, OpeningLot
from proto import patron_pb2 as pb

__all__ = ["ImportAnswer", "Rejection", "encode_rows", "openings_of", "request_rows"]


class Rejection(msgspec.Struct, array_like=True, gc=False):
    index: int
    reason: str
    detail: str


class ImportAnswer(msgspec.Struct, array_like=True, gc=False):
    """A shard's answer to its part of an import: rows imported now, rows the same import had
    imported before, and the rejected ones by their index in the part."""

    imported: int = 0
    imported_before: int = 0
    rejected: list[Rejection] = []


_decode_rows = msgspec.msgpack.Decoder(list[Opening]).decode
encode_rows = msgspec.msgpack.Encoder().encode
"""A list of Openings as an ImportRequest's `rows` (and a shard's part of them)."""


def openings_of(data: bytes) -> list[Opening]:
    """A shard's part, as the gateway encoded it."""
    return _decode_rows(data)


def request_rows(request: pb.ImportRequest) -> list[Opening]:
    """The request's rows, from `rows` or from `members`; InvalidRequestError for rows that are
    not arrays of the documented types (the whole request: no row of it was read)."""
    if request.rows and request.members:
        raise InvalidRequestError("an ImportRequest carries its rows in members or in rows, not both")
    if not request.rows:
        return [_opening(message) for message in request.members]
    try:
        return _decode_rows(request.rows)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # ValidationError among the first; msgspec's
        raise InvalidRequestError(f"rows: expected a MessagePack array of member rows as docs/api.md "
                                  f"describes: {error}") from None


def _opening(message: pb.OpeningBalance) -> Opening:
    member = message.member
    return Opening(member_id=member.member_id, tier=message.tier, tier_valid_until=message.tier_valid_until,
                   points=[OpeningLot(lot.points, lot.expires) for lot in message.points],
                   stored_value=message.stored_value, bonus_value=message.bonus_value, growth=message.growth,
                   status=message.status, channel=member.channel, birthday=member.birthday, source=member.source,
                   content=member.content, campaign=member.campaign)
