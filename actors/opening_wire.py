"""An import's rows as they cross from the gateway to a shard: the gateway cuts an
ImportRequest into each shard's members as the client encoded them (like a batch, see
batch_wire.py); the shard reads them into engine rows and answers only the rows it did not import."""

import msgspec

from engine.opening import Opening, OpeningLot
from proto import patron_pb2 as pb

__all__ = ["ImportAnswer", "Rejection", "openings_of"]


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


def openings_of(data: bytes) -> list[Opening]:
    return [_opening(message) for message in pb.ImportRequest.FromString(data).members]


def _opening(message: pb.OpeningBalance) -> Opening:
    member = message.member
    return Opening(member_id=member.member_id, tier=message.tier, tier_valid_until=message.tier_valid_until,
                   points=[OpeningLot(lot.points, lot.expires) for lot in message.points],
                   stored_value=message.stored_value, bonus_value=message.bonus_value, growth=message.growth,
                   status=message.status, channel=member.channel, birthday=member.birthday, source=member.source,
                   content=member.content, campaign=member.campaign)
