"""What a rules document's types cannot say about earning and tiers: checks across keys."""

import unicodedata
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.messages import either, invisible, listed_twice, shown
from engine.periods import parse_validity, parse_window
from engine.rules import LineMatch, Rules

__all__ = ["cross_field_problems", "match_is_empty", "new_version_problems"]


def cross_field_problems(rules: Rules) -> list[str]:
    problems: list[str] = []
    for check in (_timezone, _tiers, _tier_links, _points, _growth, _products, _multipliers,
                  _events, _channels):
        problems.extend(check(rules))
    return problems


def new_version_problems(rules: Rules) -> list[str]:
    """Checks a version meets when it is published or validated, not when it is read back: a
    data folder keeps every version it took, and one published before a check existed must still
    load (its shards read their rules at start)."""
    names = [f"tiers[{index}].name: expected a non-empty name, got {shown(tier.name)}"
             for index, tier in enumerate(rules.tiers) if _blank(tier.name)]  # named in ledgers and calls
    return (names + _padded_names(rules) + _lowest_tier_keys(rules) + _empty_when_lists(rules)
            + _empty_name_pieces(rules, "")
            + _host_timezone(rules) + _programme_name(rules) + _names_apart(rules) + _permanent_downgrade(rules)
            + _tiers_listed_twice(rules) + _blank_channels(rules) + _never_upward(rules) + _per_point_unused(rules)
            + _blank_names(rules) + _control_names(rules))


HOST_ZONES = ("localtime", "posixrules", "Factory")
"""Names the host's tz database answers but no IANA zone is: `localtime` is whatever clock the
host is set to, so each machine of a cluster could count other local days (an outside probe)."""


def _host_timezone(rules: Rules) -> list[str]:
    zone = rules.timezone
    if zone in HOST_ZONES or zone.startswith(("posix/", "right/")):
        return [f'timezone: expected an IANA timezone name such as "Asia/Shanghai", got {shown(zone)} '
                f"(it names the host's own setting or a variant of the tz database, not a place)"]
    return []


def _programme_name(rules: Rules) -> list[str]:
    if rules.programme.strip():
        return []
    return [f"programme: expected the programme's name, got {shown(rules.programme)}"]


def _names_apart(rules: Rules) -> list[str]:
    """Tiers are asked for by name (SetTier, multipliers, downgrade_to): two names one case apart,
    or written in two Unicode forms ("Café" composed or with a combining accent), are two tiers to
    patron and one to most people reading a ledger."""
    seen: dict[str, str] = {}
    problems = []
    for index, tier in enumerate(rules.tiers):
        folded = _folded(tier.name)
        earlier = seen.setdefault(folded, tier.name)
        if earlier != tier.name:
            how = "in case" if earlier.casefold() == tier.name.casefold() else "in how Unicode writes its characters"
            problems.append(f"tiers[{index}].name: {shown(tier.name)} differs from the earlier tier "
                            f"{shown(earlier)} only {how}; name them apart")
    return problems


def _folded(name: str) -> str:
    """A name as Unicode compares texts caselessly (NFKC before and after folding, as its
    compatibility caseless match)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _padded_names(rules: Rules) -> list[str]:
    """A tier name is given back exactly (SetTier, imports, multipliers): a space or an invisible
    character at either end made a tier no one could name by what they see."""
    return [f"tiers[{index}].name: {shown(tier.name)} begins or ends with a space or an invisible character; "
            f"remove it" for index, tier in enumerate(rules.tiers)
            if not _blank(tier.name) and (_blank(tier.name[0]) or _blank(tier.name[-1]))]


def _never_upward(rules: Rules) -> list[str]:
    """The lowest tier named where a tier acts only when a member goes up to it (tier_changes.py,
    recharge_bonuses.py): no member is below it, so the name did nothing (an outside probe)."""
    if not rules.tiers:
        return []
    lowest = rules.tiers[0].name
    problems = [f"coupons[{index}].tiers[{place}]: {shown(lowest)} is the lowest tier, which no upgrade enters, so "
                f"it would never issue the coupon; remove it"
                for index, coupon in enumerate(rules.coupons) if coupon.issue_on == "upgrade"
                for place, name in enumerate(coupon.tiers) if name == lowest]
    return problems + [f"recharge_bonuses[{index}].upgrade_to: {shown(lowest)} is the lowest tier, which no member "
                       f"is below, so it would never move anyone; remove upgrade_to"
                       for index, bonus in enumerate(rules.recharge_bonuses) if bonus.upgrade_to == lowest]


def _per_point_unused(rules: Rules) -> list[str]:
    """Growth from spend has a spend rule of its own; per_point, growth per point, was ignored."""
    if rules.growth.source == "spend" and rules.growth.per_point is not None:
        return ['growth.per_point: not used with source = "spend" (growth comes from unit_minor and per_unit); '
                "remove it"]
    return []


def _blank_channels(rules: Rules) -> list[str]:
    """A channel of no name: a transaction sent without a channel has the empty one, so every new
    member it made started in that tier, where docs/rules.md says they start in the lowest (an
    outside probe)."""
    return [f"default_tier_by_channel.{shown(channel)}: expected the name of a channel, got "
            f"{'an empty text' if not channel else 'only spaces'} (a new member without a channel starts in "
            f"the lowest tier; it cannot be given another)"
            for channel in rules.default_tier_by_channel if _blank(channel)]


def _names(rules: Rules) -> list[tuple[str, str, bool]]:
    """Every name and id a document gives but the tiers', with its path and whether an empty one
    is told here (it is told where uniqueness is checked otherwise)."""
    named = [(f"multipliers[{index}].name", multiplier.name, True)
             for index, multiplier in enumerate(rules.multipliers)]
    named += [(f"events[{index}].type", event.type, False) for index, event in enumerate(rules.events)]
    named += [(f"tags[{index}].name", tag.name, False) for index, tag in enumerate(rules.tags)]
    named += [(f"recharge_bonuses[{index}].name", bonus.name, False)
              for index, bonus in enumerate(rules.recharge_bonuses)]
    named += [(f"coupons[{index}].id", coupon.id, False) for index, coupon in enumerate(rules.coupons)]
    named += [(f"coupons[{index}].gift_sku", coupon.gift_sku, True)
              for index, coupon in enumerate(rules.coupons) if coupon.gift_sku is not None]
    return named


def _blank_names(rules: Rules) -> list[str]:
    """Names and ids of only spaces or invisible characters: an event type " " or a coupon id " "
    was taken, each named in ledgers and calls by something no one sees (an outside probe). An
    empty one is told where uniqueness is checked; a multiplier's name had no check at all."""
    return [f"{path}: expected text one can read (not only spaces or invisible characters), got {shown(text)}"
            for path, text, empty_too in _names(rules)
            if _blank(text) and (text or empty_too)]


def _control_names(rules: Rules) -> list[str]:
    """A tab, a line break or a NUL inside a name: names go as written into ledgers, reports, the
    events' feed and a member's tags, where a line break starts another line to a reader and a
    tab another column of an export (an outside probe published a tag's name with a tab). The
    same fixed set as ids refuse (engine/ids.py), so what is accepted never moves with Python's
    Unicode. A tier's name is looked at inside its ends, which `_padded_names` tells of: both are
    told at once, not one after the other is mended."""
    named = [("programme", rules.programme, rules.programme)]
    named += [(f"tiers[{index}].name", tier.name, _inside(tier.name)) for index, tier in enumerate(rules.tiers)]
    named += [(path, text, text) for path, text, _ in _names(rules)]
    return [f"{path}: {shown(text)} holds a control character (a tab, a line break, a NUL); remove it"
            for path, text, looked_at in named if not _blank(text) and _with_control(looked_at)]


def _inside(name: str) -> str:
    """A name without what begins and ends it unseen (spaces, invisible characters)."""
    start, end = 0, len(name)
    while start < end and _blank(name[start]):
        start += 1
    while end > start and _blank(name[end - 1]):
        end -= 1
    return name[start:end]


def _with_control(text: str) -> bool:
    return any(ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F for character in text)


def _blank(text: str) -> bool:
    """Nothing a reader sees: empty, spaces, or format characters such as a zero-width space
    (Unicode category Cf)."""
    return all(character.isspace() or invisible(character) for character in text)


def _tiers_listed_twice(rules: Rules) -> list[str]:
    """A tier named twice in one list of tiers: an upgrade coupon's was issued twice at each
    upgrade (an outside probe), and elsewhere the second name did nothing."""
    lists = [(f"coupons[{index}].tiers", coupon.tiers) for index, coupon in enumerate(rules.coupons)]
    lists += [(f"recharge_bonuses[{index}].tiers", bonus.tiers) for index, bonus in enumerate(rules.recharge_bonuses)]
    lists += [(f"multipliers[{index}].when.tiers", multiplier.when.tiers or [])
              for index, multiplier in enumerate(rules.multipliers)]
    return [problem for path, names in lists for problem in listed_twice(names, path, "; list each tier once")]


def _permanent_downgrade(rules: Rules) -> list[str]:
    """`downgrade_to` says where a tier's end leads; a permanent tier never ends, so it did nothing
    (as `extension` there, which is refused)."""
    return [f"tiers[{index}].downgrade_to: a permanent tier never ends, so it is never left for "
            f"another; give it a validity or remove downgrade_to"
            for index, tier in enumerate(rules.tiers)
            if index > 0 and tier.downgrade_to is not None and (validity := parse_validity(tier.validity))
            and validity.endless]


def _empty_name_pieces(value: Any, path: str) -> list[str]:
    """`name_contains = [""]` in any line match: the empty piece is in every name, so it matched
    every line (an outside probe)."""
    if isinstance(value, LineMatch):
        return [f"{path}.name_contains[{index}]: expected a piece of a product name, got an empty text (it is "
                f"in every name)" for index, piece in enumerate(value.name_contains) if not piece]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _empty_name_pieces(item, f"{path}[{index}]")]
    if hasattr(value, "__struct_fields__"):
        return [p for key in value.__struct_fields__
                for p in _empty_name_pieces(getattr(value, key), f"{path}.{key}" if path else key)]
    return []


def _lowest_tier_keys(rules: Rules) -> list[str]:
    """Keys the lowest tier cannot use: they were accepted and did nothing (an outside probe)."""
    if not rules.tiers:
        return []
    lowest = rules.tiers[0]
    unused = [key for key, value, default in (("window", lowest.window, "lifetime"),
                                              ("validity", lowest.validity, "permanent"),
                                              ("extension", lowest.extension, None),
                                              ("effective", lowest.effective, "immediate"),
                                              ("downgrade_to", lowest.downgrade_to, None)) if value != default]
    return [f"tiers[0]: the lowest tier is never reached, left or extended: it is permanent; "
            f"remove {', '.join(unused)}"] if unused else []


def _empty_when_lists(rules: Rules) -> list[str]:
    """A multiplier's `weekdays = []` held on every day and `dates = []` on none (an outside probe)."""
    return [f"multipliers[{index}].when.{key}: expected at least one, got an empty list (leave the key out "
            f"for no condition on it)"
            for index, multiplier in enumerate(rules.multipliers)
            for key, listed in (("tiers", multiplier.when.tiers), ("dates", multiplier.when.dates),
                                ("weekdays", multiplier.when.weekdays)) if listed is not None and not listed]


def _timezone(rules: Rules) -> list[str]:
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("Asia"), a name too long
        return [f'timezone: expected an IANA timezone name such as "Asia/Shanghai", '
                f"got {shown(rules.timezone)}"]
    return []


def _tiers(rules: Rules) -> list[str]:
    if not rules.tiers:
        return ["tiers: expected at least one tier (the first is the lowest and the default)"]
    problems = []
    lowest = rules.tiers[0]
    if lowest.metric is not None or lowest.threshold is not None:
        problems.append("tiers[0]: the first tier is the lowest and the default; "
                        "it takes no metric or threshold")
    seen: set[str] = set()
    for index, tier in enumerate(rules.tiers):
        path = f"tiers[{index}]"
        if tier.name in seen:
            problems.append(f"{path}.name: {shown(tier.name)} is used by an earlier tier")
        seen.add(tier.name)
        problems.extend(_tier_periods(tier, path, index))
    return problems + _ascending(rules)


def _tier_periods(tier: Any, path: str, index: int) -> list[str]:
    problems = []
    window, validity = parse_window(tier.window), parse_validity(tier.validity)  # wording checked already
    if index > 0 and (tier.metric is None or tier.threshold is None):
        problems.append(f"{path}: a tier above the lowest needs a metric and a threshold")
    cumulative = tier.metric not in (None, "single_purchase")
    if window and validity and window.endless and cumulative and not validity.endless:
        problems.append(f'{path}.validity: a tier reached on a lifetime metric is permanent; '
                        f'expected "permanent", got {shown(tier.validity)}')
    if index > 0 and tier.extension is not None and validity is not None and validity.endless:
        problems.append(f"{path}.extension: a permanent tier cannot be extended; "
                        f"give it a validity or remove the extension")
    return problems


def _ascending(rules: Rules) -> list[str]:
    """Tiers judged on the same metric and window must ask more the higher they are."""
    problems = []
    last: dict[tuple[str, str], tuple[int, str]] = {}
    for index, tier in enumerate(rules.tiers[1:], start=1):
        if tier.metric is None or tier.threshold is None:
            continue
        key = (tier.metric, tier.window)
        if key in last and tier.threshold <= last[key][0]:
            lower, name = last[key]
            problems.append(f"tiers[{index}].threshold: tiers go from lowest to highest, so it "
                            f"must be above {lower} (tier {shown(name)}), got {tier.threshold}")
        last[key] = (tier.threshold, tier.name)
    return problems


def _tier_links(rules: Rules) -> list[str]:
    problems = []
    names = [t.name for t in rules.tiers]
    skus: set[str] = set()
    for index, tier in enumerate(rules.tiers):
        path = f"tiers[{index}]"
        target = tier.downgrade_to
        if target is not None and (target not in names or names.index(target) >= index):
            problems.append(f"{path}.downgrade_to: expected the name of a lower tier "
                            f"({either(tuple(names[:index])) if index else 'none'}), got {shown(target)}")
        sku = tier.paid_upgrade_sku
        if sku is not None and (index == 0 or not sku or sku in skus):
            problems.append(f"{path}.paid_upgrade_sku: expected a sku unique to a tier above the "
                            f"lowest, got {shown(sku)}")
        skus.add(sku or "")
    return problems


def _points(rules: Rules) -> list[str]:
    expiry = rules.points.expiry
    wanted = {"jan1_after_years": "years", "rolling_days": "days"}.get(expiry.policy)
    problems = []
    for key in ("years", "days"):
        given = getattr(expiry, key) is not None
        if key == wanted and not given:
            problems.append(f"points.expiry.{key}: missing; expected an integer with "
                            f"policy {shown(expiry.policy)}")
        if key != wanted and given:
            problems.append(f"points.expiry.{key}: not used with policy {shown(expiry.policy)}; "
                            f"remove it")
    return problems


def _growth(rules: Rules) -> list[str]:
    growth = rules.growth
    spend_keys = growth.unit_minor is not None, growth.per_unit is not None
    if growth.source == "spend" and not all(spend_keys):
        return ['growth: with source = "spend", expected unit_minor and per_unit']
    if growth.source == "points" and any(spend_keys):
        return ['growth: unit_minor and per_unit are used only with source = "spend"']
    return []


_MODE_KEYS = {"fixed": ("points",), "per_amount": ("unit_minor", "per_unit"), "percent": ("percent",)}


def _products(rules: Rules) -> list[str]:
    problems = []
    for index, rule in enumerate(rules.product_rules):
        path = f"product_rules[{index}]"
        wanted = _MODE_KEYS[rule.mode]
        for key in ("points", "unit_minor", "per_unit", "percent"):
            given = getattr(rule, key) is not None
            if key in wanted and not given:
                problems.append(f"{path}.{key}: missing; expected a number with mode {shown(rule.mode)}")
            if key not in wanted and given:
                problems.append(f"{path}.{key}: not used with mode {shown(rule.mode)}; remove it")
        if match_is_empty(rule.match):
            problems.append(f"{path}.match: expected at least one of sku, category, "
                            f"name_contains or product_id")
    return problems


def match_is_empty(match: LineMatch) -> bool:
    return not (match.sku or match.category or match.name_contains or match.product_id)


def _multipliers(rules: Rules) -> list[str]:
    problems = []
    names = tuple(t.name for t in rules.tiers)
    for index, multiplier in enumerate(rules.multipliers):
        path = f"multipliers[{index}].when"
        when = multiplier.when
        conditions = (when.tiers, when.birthday, when.dates, when.weekdays, when.from_, when.to)
        if all(c is None for c in conditions):
            problems.append(f"{path}: expected at least one of tiers, birthday, dates, weekdays, "
                            f"from / to")
        for tier in when.tiers or ():
            if names and tier not in names:  # no tiers at all is told once (`_tiers`), not at each name
                problems.append(f"{path}.tiers: expected names of tiers ({either(names)}), "
                                f"got {shown(tier)}")
        if when.from_ and when.to and when.from_ > when.to:
            problems.append(f"{path}.to: expected a date on or after from ({when.from_}), got {when.to}")
    return problems


def _events(rules: Rules) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, event in enumerate(rules.events):
        if not event.type or event.type in seen:
            problems.append(f"events[{index}].type: expected a unique, non-empty event type, "
                            f"got {shown(event.type)}")
        seen.add(event.type)
    return problems


def _channels(rules: Rules) -> list[str]:
    names = tuple(t.name for t in rules.tiers)
    return [f"default_tier_by_channel.{channel}: expected the name of a tier ({either(names)}), "
            f"got {shown(tier)}"
            for channel, tier in rules.default_tier_by_channel.items() if names and tier not in names]
