"""A member as the outside sees it: what replay writes and GetMember answers."""

from msgspec import Struct

from engine.calendar import iso
from engine.members import Member
from engine.programme import Programme

__all__ = ["MemberSummary", "summarise"]


class MemberSummary(Struct, omit_defaults=True):
    """Empty profile fields are left out of the JSON."""

    member_id: str
    tier: str
    points: int
    growth: int
    abnormal: bool
    status: str
    pending: int = 0
    stored_value: int = 0
    tier_valid_until: str = ""
    """ISO date of the tier's last valid day; empty when permanent."""
    enrolled_on: str = ""
    birthday: str = ""
    source: str = ""
    content: str = ""
    campaign: str = ""
    channel: str = ""
    attributes: dict[str, str | int | float] = {}
    tags: list[str] = []
    """Computed and manual tags together, sorted."""


def summarise(programme: Programme, member: Member) -> MemberSummary:
    names = programme.ladder.names
    tier = names[member.tier] if member.tier < len(names) else names[-1]
    until = iso(member.tier_until) if member.tier_until else ""
    profile = member.profile
    return MemberSummary(member.member_id, tier, member.points, member.growth, member.abnormal,
                         member.status, member.pending, member.stored_value, until, iso(member.enrolled),
                         profile.birthday, profile.source, profile.content, profile.campaign, profile.channel,
                         profile.attributes, sorted(set(member.tags) | set(member.manual_tags)))
