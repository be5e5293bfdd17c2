"""Checking a rules document: every problem named by its key path, what was expected and what was found."""

import tomllib
import types
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta, Struct

from engine.errors import RulesError
from engine.periods import parse_validity, parse_window
from engine.rules import DecimalBound, LineMatch, Rules, Wording, build_rules

__all__ = ["load_rules", "load_rules_file", "parse_rules"]


def load_rules_file(path: str | Path) -> Rules:
    """Read, check and build a rules document from a TOML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError([f"{path}: cannot read the rules file ({error.strerror})"]) from None
    return load_rules(text)


def load_rules(text: str) -> Rules:
    """Check and build a rules document from TOML text; raises RulesError listing every problem."""
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise RulesError([f"not a TOML document: {error}"]) from None
    return parse_rules(document)


def parse_rules(document: dict) -> Rules:
    problems: list[str] = []
    _check(document, Rules, "", problems)
    if problems:
        raise RulesError(problems)
    rules = build_rules(document)
    problems = cross_field_problems(rules)
    if problems:
        raise RulesError(problems)
    return rules


# -- the shape of the document, driven by the model's types ---------------------------


def _check(value: Any, kind: Any, path: str, problems: list[str]) -> None:
    kind, meta = _unwrap(kind)
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        _check(value, options[0], path, problems)
    elif isinstance(kind, type) and issubclass(kind, Struct):
        _check_table(value, kind, path, problems)
    elif origin is list:
        _check_list(value, get_args(kind)[0], path, problems)
    elif origin is dict:
        _check_mapping(value, get_args(kind)[1], path, problems)
    elif origin is Literal:
        if value not in get_args(kind):
            problems.append(f"{path}: expected {_either(get_args(kind))}, got {_shown(value)}")
    else:
        _check_scalar(value, kind, meta, path, problems)


Bound = Meta | DecimalBound | Wording


def _unwrap(kind: Any) -> tuple[Any, Bound | None]:
    if get_origin(kind) is Annotated:
        base, *extras = get_args(kind)
        return base, next((m for m in extras if isinstance(m, (Meta, DecimalBound, Wording))), None)
    return kind, None


def _check_table(value: Any, kind: type[Struct], path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path or 'the document'}: expected a table, got {_shown(value)}")
        return
    fields = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    for key, element in value.items():  # in document order, as the retailer reads it
        if key in fields:
            _check(element, fields[key].type, _join(path, key), problems)
        else:
            known = ", ".join(fields)
            problems.append(f"{_join(path, key)}: unknown key; expected one of {known}")
    for key, info in fields.items():
        if key not in value and info.required:
            problems.append(f"{_join(path, key)}: missing; expected {_describe(info.type)}")


def _check_list(value: Any, item: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {_describe(item)}, got {_shown(value)}")
        return
    for index, element in enumerate(value):
        _check(element, item, f"{path}[{index}]", problems)


def _check_mapping(value: Any, item: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a table, got {_shown(value)}")
        return
    for key, element in value.items():
        _check(element, item, _join(path, key), problems)


def _check_scalar(value: Any, kind: Any, meta: Bound | None, path: str, problems: list[str]) -> None:
    if not _is_a(value, kind) or (meta is not None and not _within(value, meta)):
        problems.append(f"{path}: expected {_describe(kind, meta)}, got {_shown(value)}")


def _is_a(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Decimal:
        return isinstance(value, (int, Decimal)) and not isinstance(value, bool)
    if kind is date:
        return isinstance(value, date) or (isinstance(value, str) and _iso_date(value))
    return isinstance(value, kind)


def _iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _within(value: Any, meta: Bound) -> bool:
    if isinstance(meta, Wording):
        return meta.parse(value) is not None
    if meta.ge is not None and value < meta.ge:
        return False
    return meta.gt is None or value > meta.gt


def _describe(kind: Any, meta: Bound | None = None) -> str:
    kind, inner = _unwrap(kind)
    meta = meta or inner
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return _describe(next(a for a in get_args(kind) if a is not type(None)))
    if origin is Literal:
        return _either(get_args(kind))
    if origin is list:
        item = _describe(get_args(kind)[0])
        return "a list of tables" if item == "a table" else f"a list of {item}"
    if origin is dict or (isinstance(kind, type) and issubclass(kind, Struct)):
        return "a table"
    names = {bool: "true or false", int: "an integer", Decimal: "a number", str: "a string",
             date: "a date (YYYY-MM-DD)"}
    name = names.get(kind, str(kind))
    if isinstance(meta, Wording):
        return meta.expected
    if meta is not None and meta.gt is not None:
        return f"{name} greater than {meta.gt}"
    if meta is not None and meta.ge is not None:
        return f"{name} of at least {meta.ge}"
    return name


def _either(options: tuple) -> str:
    shown = [_shown(o) for o in options]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- what the types cannot say ----------------------------------------------------------


def cross_field_problems(rules: Rules) -> list[str]:
    problems: list[str] = []
    for check in (_timezone, _tiers, _tier_links, _points, _growth, _products, _multipliers,
                  _events, _channels):
        problems.extend(check(rules))
    return problems


def _timezone(rules: Rules) -> list[str]:
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [f'timezone: expected an IANA timezone name such as "Asia/Shanghai", '
                f"got {_shown(rules.timezone)}"]
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
            problems.append(f"{path}.name: {_shown(tier.name)} is used by an earlier tier")
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
                        f'expected "permanent", got {_shown(tier.validity)}')
    if tier.extension is not None and validity is not None and validity.endless:
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
                            f"must be above {lower} (tier {_shown(name)}), got {tier.threshold}")
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
                            f"({_either(tuple(names[:index])) if index else 'none'}), got {_shown(target)}")
        sku = tier.paid_upgrade_sku
        if sku is not None and (index == 0 or not sku or sku in skus):
            problems.append(f"{path}.paid_upgrade_sku: expected a sku unique to a tier above the "
                            f"lowest, got {_shown(sku)}")
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
                            f"policy {_shown(expiry.policy)}")
        if key != wanted and given:
            problems.append(f"points.expiry.{key}: not used with policy {_shown(expiry.policy)}; "
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
                problems.append(f"{path}.{key}: missing; expected a number with mode {_shown(rule.mode)}")
            if key not in wanted and given:
                problems.append(f"{path}.{key}: not used with mode {_shown(rule.mode)}; remove it")
        if _empty(rule.match):
            problems.append(f"{path}.match: expected at least one of sku, category, "
                            f"name_contains or product_id")
    return problems


def _empty(match: LineMatch) -> bool:
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
            if tier not in names:
                problems.append(f"{path}.tiers: expected names of tiers ({_either(names)}), "
                                f"got {_shown(tier)}")
        if when.from_ and when.to and when.from_ > when.to:
            problems.append(f"{path}.to: expected a date on or after from ({when.from_}), got {when.to}")
    return problems


def _events(rules: Rules) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, event in enumerate(rules.events):
        if not event.type or event.type in seen:
            problems.append(f"events[{index}].type: expected a unique, non-empty event type, "
                            f"got {_shown(event.type)}")
        seen.add(event.type)
    return problems


def _channels(rules: Rules) -> list[str]:
    names = tuple(t.name for t in rules.tiers)
    return [f"default_tier_by_channel.{channel}: expected the name of a tier ({_either(names)}), "
            f"got {_shown(tier)}"
            for channel, tier in rules.default_tier_by_channel.items() if tier not in names]
