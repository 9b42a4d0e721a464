"""The one lead query: leads ⋈ contacts (⋈ status label), filtered and keyset-ordered on the lead indexes.

The list, the detail and the CSV export all build on `lead_select` so they can never disagree.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Integer,
    Select,
    String,
    and_,
    any_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.leads.schemas import LeadOut, NextAction
from services.api.owners.scope import COLLABORATES, POOL, AgentScope, collaborations, team_properties
from services.api.pagination import bad_cursor, encode_cursor, time_keyset
from shared.models import Contact, ContactIdentity, Lead, StatusLabel
from shared.normalize.phone import normalize_phone

LeadSort = Literal["created_at", "-created_at", "updated_at", "-updated_at"]
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{3,}$")
_FIELD = "\n"  # what precedes every field of search_text
_TRIGRAM = 3  # shorter text has no trigram to look up

# the lead's columns the wire shows (LeadOut, its next action from three): what every read of a lead selects; a
# column no answer shows (automation's bookkeeping, the next action's JSON provenance) is not read, nor decoded
_SHOWN = {*LeadOut.model_fields, "next_action_type", "next_action_due_at", "next_action_owner_id"}
LEAD_COLUMNS = [c for c in Lead.__table__.c if c.key in _SHOWN]


@dataclass
class LeadFilters:
    status: list[str] | None = None
    temperature: str | None = None
    property_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    unassigned: bool = False
    source: str | None = None
    kind: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    has_next_action_overdue: bool | None = None
    q: str | None = None
    sort: LeadSort = "-created_at"
    # a phone search's matching contacts, resolved first (`phone_contact_ids`); None: match while filtering
    contact_ids: list[uuid.UUID] | None = None


DEFAULT_PAGE = 50  # the list route's default page size
MAX_PAGE = 500  # the largest page the list and the timeline give
# an organization's id, or a parameter for it (services/api/leads/fast.py compiles the statements once)
OrgRef = uuid.UUID | BindParameter[uuid.UUID]


def lead_select(org_id: OrgRef) -> Select[Any]:
    return (
        select(
            *LEAD_COLUMNS,
            Contact.first_name,
            Contact.last_name,
            Contact.primary_email.label("email"),
            Contact.primary_phone.label("phone"),
            StatusLabel.label.label("status_label"),
        )
        .join(Contact, Contact.id == Lead.contact_id)
        .outerjoin(StatusLabel, StatusLabel.id == Lead.status_label_id)
        .where(Lead.org_id == org_id)
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Bind(Protocol):
    """How a condition gets the value it compares with: `by_value` for the routes (SQLAlchemy binds the value
    itself), or services/api/leads/fast.py's named parameters, so one statement per shape is compiled once."""

    def __call__(
        self,
        name: str,
        value: Any,
        type_: Any = None,
        *,
        inline: bool = False,
        expanding: bool = False,
        array: bool = False,
    ) -> Any: ...


def by_value(
    name: str, value: Any, type_: Any = None, *, inline: bool = False, expanding: bool = False, array: bool = False
) -> Any:
    """The value itself; an `inline` one (a search pattern) as a literal the planner sees; a list bound as one
    `array` parameter of `type_`."""
    if inline:
        return literal(value, literal_execute=True)
    return literal(value, type_) if array else value


def search_patterns(q: str) -> list[str]:
    """The LIKE patterns of a search of `search_text` (see `search_condition`)."""
    text = q.strip()
    prefixes = _phone_prefixes(text)
    if prefixes is not None:
        return [f"%{_FIELD}{_escape_like(p)}%" for p in prefixes]
    if len(text) < _TRIGRAM:
        return [f"%{_FIELD}{_escape_like(text)}%", f"% {_escape_like(text)}%"]
    return [f"%{_escape_like(text)}%"]


def search_condition(
    q: str, column: Any = None, *, patterns: list[str] | None = None, bind: Bind = by_value
) -> ColumnElement[bool]:
    """Leads whose `search_text` (the contact's names and identities, one per line; migrations 0003, r16)
    matches q.

    - a phone-looking q: a phone identity starts with it (E.164, "+1" assumed for bare national digits);
    - 1-2 characters: a word of a name or an identity starts with it (too short for a trigram substring);
    - anything else (names, emails or parts of them): a substring of any field, case-insensitive.

    Every field follows a newline, so '%' + newline + prefix + '%' is "a field starts with prefix". The
    pattern goes into the SQL as a literal: the planner must see it to choose between walking the newest
    first index, which carries search_text (a common name: short, from the index alone), and the trigram
    index (a rare one, then a sort of the few it finds); a generic prepared plan cannot. `column` swaps in another
    search_text (the contacts' one, for tests that hold the two to the same answer).
    """
    target = Lead.search_text if column is None else column
    # search_text is lowercase already: LIKE on the lowered pattern matches as ILIKE would, ~5× cheaper a row
    # (lower() of a constant folds at plan time, so the planner still sees the pattern)
    return or_(*[
        target.like(func.lower(bind(f"pattern_{i}", p, String(), inline=True)), escape="\\")
        for i, p in enumerate(search_patterns(q) if patterns is None else patterns)
    ])  # fmt: skip


PHONE_CANDIDATES = 2000


def phone_prefix_patterns(q: str) -> list[str] | None:
    """The LIKE patterns of a phone search's identities (a range on the identity btree each), or None: no phone."""
    prefixes = _phone_prefixes(q.strip())
    return None if prefixes is None else [_escape_like(p) + "%" for p in prefixes]


def phone_contacts(
    org_id: OrgRef, q: str, *, patterns: list[str] | None = None, bind: Bind = by_value
) -> Select[Any] | None:
    """The contacts with a phone starting with q (a range on the identity btree), or None: q is no phone."""
    patterns = phone_prefix_patterns(q) if patterns is None else patterns
    if patterns is None:
        return None
    return select(ContactIdentity.contact_id).where(
        ContactIdentity.org_id == org_id,
        ContactIdentity.kind == "phone",
        or_(*[ContactIdentity.value.like(bind(f"prefix_{i}", p, String(), inline=True), escape="\\")
              for i, p in enumerate(patterns)]),
    )  # fmt: skip


async def phone_contact_ids(session: AsyncSession, org_id: uuid.UUID, q: str) -> list[uuid.UUID] | None:
    """Phase one of a phone search: its contacts, or None when q is no phone or more than
    PHONE_CANDIDATES match. Asked first because in one statement the planner may misjudge a prefix as
    common and walk every lead with an identity lookup each (7.5 s for one 8-character prefix at 1 M)."""
    query = phone_contacts(org_id, q)
    if query is None:
        return None
    return few_contacts(await session.scalars(query.limit(PHONE_CANDIDATES + 1)))


def few_contacts(found: Iterable[uuid.UUID]) -> list[uuid.UUID] | None:
    """Phase one's answer: the distinct contacts, or None when more than PHONE_CANDIDATES matched."""
    ids = list(dict.fromkeys(found))
    return None if len(ids) > PHONE_CANDIDATES else ids


def _phone_prefixes(text: str) -> list[str] | None:
    if not _PHONE_LIKE.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    e164, _ = normalize_phone(text)
    if e164:
        return [e164]
    if text.startswith("+"):
        return ["+" + digits]
    return sorted({"+1" + digits, "+" + digits})


Term = tuple[str, Any]  # one condition of the list: which (its name) and what it compares with


def filter_terms(f: LeadFilters) -> list[Term]:
    """The list's conditions, in pure Python: `apply_filters` turns them into SQL. Their names and the lengths of
    the pattern lists are the statement's shape (`filter_shape`): fast.py compiles one statement per shape."""
    terms: list[Term] = []
    if f.status:
        terms.append(("status", list(f.status)))
    if f.temperature:
        terms.append(("temperature", f.temperature))
    if f.property_id:
        terms.append(("property_id", f.property_id))
    if f.unassigned:
        terms.append(("unassigned", None))
    elif f.owner_id:
        terms.append(("owner_id", f.owner_id))
    if f.source:
        terms.append(("source", f.source))
    if f.kind:
        terms.append(("kind", f.kind))
    for name in ("created_from", "created_to", "updated_from", "updated_to"):
        if getattr(f, name):
            terms.append((name, getattr(f, name)))
    if f.has_next_action_overdue is not None:
        terms.append(("overdue" if f.has_next_action_overdue else "not_overdue", None))
    if f.q and f.q.strip():
        if f.contact_ids is not None:  # a phone search's contacts, resolved first: few, by ix_leads_contact_id
            terms.append(("contact_ids", list(f.contact_ids)) if f.contact_ids else ("no_contacts", None))
        else:
            phones = phone_prefix_patterns(f.q)
            terms.append(("search", search_patterns(f.q)) if phones is None else ("phone", phones))
    return terms


_PATTERNED = {"search", "phone"}  # terms whose number of patterns shapes the SQL


def filter_shape(terms: list[Term]) -> tuple[tuple[str, int], ...]:
    return tuple((name, len(value) if name in _PATTERNED else 0) for name, value in terms)


def term_values(terms: list[Term]) -> dict[str, Any]:
    """The named parameters `_condition` binds for these terms (fast.py gives them to a shape's statement)."""
    values: dict[str, Any] = {}
    for name, value in terms:
        if name in _PATTERNED:
            stem = "pattern" if name == "search" else "prefix"
            values.update({f"{stem}_{i}": pattern for i, pattern in enumerate(value)})
        elif value is not None:
            values[name] = value
    return values


_EQUALS = {"temperature": Lead.temperature, "property_id": Lead.property_id, "owner_id": Lead.owner_id,
           "source": Lead.source, "kind": Lead.kind}  # fmt: skip
_FROM = {"created_from": Lead.created_at, "updated_from": Lead.updated_at}
_TO = {"created_to": Lead.created_at, "updated_to": Lead.updated_at}


def _condition(org_id: OrgRef, name: str, value: Any, bind: Bind) -> ColumnElement[bool]:
    if name in _EQUALS:
        return _EQUALS[name] == bind(name, value, _EQUALS[name].type)
    if name in _FROM:
        return _FROM[name] >= bind(name, value, _FROM[name].type)
    if name in _TO:
        return _TO[name] < bind(name, value, _TO[name].type)
    match name:
        case "status":
            return Lead.status.in_(bind(name, value, Lead.status.type, expanding=True))
        case "unassigned":
            return Lead.owner_id.is_(None)
        case "overdue":
            return Lead.next_action_due_at < func.now()
        case "not_overdue":
            return or_(Lead.next_action_due_at.is_(None), Lead.next_action_due_at >= func.now())
        case "contact_ids":
            # one array parameter, not IN ($1, …, $n): the same statement for any number of contacts (up to
            # PHONE_CANDIDATES), nothing to render per id (~2 ms for 400 in fast.py)
            return Lead.contact_id == any_(bind(name, value, ARRAY(Lead.contact_id.type), array=True))
        case "no_contacts":
            return false()
        case "search":
            return search_condition("", patterns=value, bind=bind)
        case "phone":
            # a phone prefix is a range on the identity btree: digits share trigrams so widely that the trigram
            # index reads hundreds of false hits per prefix
            phones = phone_contacts(org_id, "", patterns=value, bind=bind)
            assert phones is not None
            return Lead.contact_id.in_(phones)
    raise ValueError(name)


def apply_filters(
    query: Select[Any], org_id: OrgRef, f: LeadFilters, *, terms: list[Term] | None = None, bind: Bind = by_value
) -> Select[Any]:
    conditions = [
        _condition(org_id, name, value, bind) for name, value in (filter_terms(f) if terms is None else terms)
    ]
    return query.where(and_(*conditions)) if conditions else query


def list_statement(
    org_id: OrgRef,
    f: LeadFilters,
    limit: int,
    cursor: str | None,
    scope: ColumnElement[bool] | Sequence[ColumnElement[bool]] | None = None,
    *,
    terms: list[Term] | None = None,
    bind: Bind = by_value,
) -> Select[Any]:
    """A page of the list (limit + 1 rows, to know whether there is a next page).

    A search picks the page's lead ids first, from `leads` alone: newest first, that walk can be answered
    from `ix_leads_org_id_created_at_id_search` without a heap page per lead passed over. The page's rows
    are then read by id. Without a search the filters and order are applied to the full row directly.
    `scope`: the caller's leads, one condition or the sets whose union they are (`owners.scope.scope_parts`);
    in creation order, each set's page is found on its own index and the pages merged (`_scope_branches`).
    `terms` / `bind`: fast.py's statement of a shape, its values named parameters (`rows` the page size + 1).
    """
    terms = filter_terms(f) if terms is None else terms
    rows = bind("rows", limit + 1, Integer())
    parts = (scope,) if isinstance(scope, ColumnElement) else tuple(scope or ())
    condition = or_(*parts) if parts else None
    if any(name in _SEARCHES for name, _ in terms):
        ids = select(Lead.id).where(Lead.org_id == org_id)
        ids = apply_filters(ids, org_id, f, terms=terms, bind=bind)
        if condition is not None:
            ids = ids.where(condition)
        ids = apply_order(ids, f.sort, cursor, bind=bind).limit(rows)
        return apply_order(lead_select(org_id).where(Lead.id.in_(ids.scalar_subquery())), f.sort, None)
    if len(parts) > 1 and _sort_column(f.sort) is Lead.created_at:
        agent = scope.user_id if isinstance(scope, AgentScope) else None
        ids = _scope_branches(org_id, f, cursor, parts, rows, terms, bind, agent)
        return apply_order(lead_select(org_id).where(Lead.id.in_(ids)), f.sort, None)
    query = apply_filters(lead_select(org_id), org_id, f, terms=terms, bind=bind)
    if condition is not None:  # owners' scope: an agent's own, collaborated and pool leads
        query = query.where(condition)
    return apply_order(query, f.sort, cursor, bind=bind).limit(rows)


_BRANCH_COLUMNS: tuple[Any, ...] = (Lead.id, Lead.created_at)


def _scope_branches(
    org_id: OrgRef,
    f: LeadFilters,
    cursor: str | None,
    parts: tuple[ColumnElement[bool], ...],
    rows: Any,
    terms: list[Term],
    bind: Bind,
    agent: Any = None,
) -> Any:
    """The page's lead ids in creation order, as the first `rows` of the union of each set's own first `rows`.

    Joined by OR, an agent's scope leaves the planner one way to an ordered page: walk every lead of the
    organization newest first and test each (42 ms at 1 M leads for an agent owning 0.6 % of them, 2.5 s for
    one owning none). Each set alone has its index (the owner's leads by date, the collaborations, the pool by
    property): its first page is a short walk, and the merged page is the same page (UNION drops a lead in
    two sets). Ordering by updated_at has no such index per owner: it keeps the one condition. An agent's pool
    and collaborations (`agent`: whose the sets are) are read from the agent's own rows: `_driven_page`."""
    branches = []
    for index, part in enumerate(parts):
        if agent is not None and index in (COLLABORATES, POOL):
            branches.append(_driven_page(org_id, f, cursor, agent, index, rows, terms, bind))
            continue
        branch = select(*_BRANCH_COLUMNS).where(Lead.org_id == org_id, part)
        branch = apply_filters(branch, org_id, f, terms=terms, bind=bind)
        branches.append(apply_order(branch, f.sort, cursor, bind=bind).limit(rows))
    merged = union(*branches).subquery("scoped")
    return select(merged.c.id).order_by(*_page_order(merged, f.sort)).limit(rows).scalar_subquery()


def _page_order(page: Any, sort: LeadSort) -> tuple[Any, Any]:
    if sort.startswith("-"):
        return page.c.created_at.desc(), page.c.id.desc()
    return page.c.created_at.asc(), page.c.id.asc()


def _driven_page(
    org_id: OrgRef, f: LeadFilters, cursor: str | None, agent: Any, part: int, rows: Any, terms: list[Term], bind: Bind
) -> Select[Any]:
    """The first `rows` of an agent's collaborations or pool, read from the agent's own rows: for each lead it
    collaborates on, that lead (by id); for each property of its teams, the property's unowned leads in order
    (`ix_leads_pool`), the first `rows` of each; merged.

    As conditions (`id IN (its collaborations)`, `property_id IN (its properties)`) the plan depends on the
    planner's guess, and a prepared statement's generic plan cannot see how few rows the agent has: it walked
    the organization's leads newest first and tested each (every unowned lead, 50 ms at 50 k leads, for an agent
    on no team; every lead for one who collaborates on none). Joined LATERAL to the agent's rows, the read
    starts from them in every plan."""
    if part == COLLABORATES:
        keys = collaborations(agent).subquery("mine")
        each = select(*_BRANCH_COLUMNS).where(Lead.org_id == org_id, Lead.id == keys.c.lead_id)
    else:
        keys = team_properties(agent).subquery("team")
        each = select(*_BRANCH_COLUMNS).where(
            Lead.org_id == org_id, Lead.owner_id.is_(None), Lead.property_id == keys.c.property_id
        )
    each = apply_filters(each, org_id, f, terms=terms, bind=bind)
    found = apply_order(each, f.sort, cursor, bind=bind).limit(rows).lateral("found")
    page = select(found.c.id, found.c.created_at).select_from(keys).join(found, true())
    return page.order_by(*_page_order(found, f.sort)).limit(rows)


_SEARCHES = {"search", "phone", "contact_ids", "no_contacts"}


def _sort_column(sort: LeadSort) -> Any:
    return Lead.updated_at if sort.lstrip("-") == "updated_at" else Lead.created_at


def cursor_after(sort: LeadSort, cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (sort value, id) a cursor continues after; a 422 naming `query.cursor` when it is not one of this sort."""
    (cursor_sort,), after = time_keyset(cursor, leading=1)
    if cursor_sort != sort:
        raise bad_cursor("the cursor belongs to another sort order")
    return after


def cursor_values(sort: LeadSort, cursor: str | None) -> dict[str, Any]:
    """The named parameters `apply_order` binds for a cursor (none without one)."""
    if not cursor:
        return {}
    at, lead_id = cursor_after(sort, cursor)
    return {"after_at": at, "after_id": lead_id}


def apply_order(query: Select[Any], sort: LeadSort, cursor: str | None, *, bind: Bind = by_value) -> Select[Any]:
    column = _sort_column(sort)
    descending = sort.startswith("-")
    if cursor:
        at, lead_id = cursor_after(sort, cursor)
        key = tuple_(column, Lead.id)
        after = tuple_(bind("after_at", at, column.type), bind("after_id", lead_id, Lead.id.type))
        query = query.where(key < after if descending else key > after)
    if descending:
        return query.order_by(column.desc(), Lead.id.desc())
    return query.order_by(column.asc(), Lead.id.asc())


def next_cursor_for(row: RowMapping | dict[str, Any], sort: LeadSort) -> str:
    at: datetime = row[sort.lstrip("-")]
    return encode_cursor([sort, at.astimezone(UTC).isoformat(), str(row["id"])])


def row_to_out(row: RowMapping) -> LeadOut:
    data = dict(row)
    action_type = data.pop("next_action_type")
    due_at = data.pop("next_action_due_at")
    owner_id = data.pop("next_action_owner_id")
    data["next_action"] = (
        NextAction(type=action_type, due_at=due_at, owner_id=owner_id) if action_type is not None else None
    )
    data["preferred_tour_times"] = data.get("preferred_tour_times") or []
    return LeadOut.model_validate(data)
