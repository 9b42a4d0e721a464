# ruff: noqa: S608  (SQL is assembled from constant fragments; values are bind parameters)
"""Reply-time histograms (migration m18r): the buckets, and the rollup rows the fold derives from base rows.

A lead's cohort base row carries the bucket of each of its three first replies (automated, human, any) and the
delay in milliseconds. `metric_reply_rollups` keeps, per level key and bucket, how many leads' reply fell in it
and the sum of their delays; bucket -1 counts the leads without such a reply, so every bucket of one key sums
to its leads. A median or p90 is read from the bucket means (docs/metrics.md: the error bound).
"""

from __future__ import annotations

import bisect
import itertools
import math

ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
GRAINS = ("d", "w", "m")
KINDS = ("automated", "human", "first")
# Bucket 0: delays <= 0.1 s (and replies recorded before the lead). Each segment (a, b] between these edges is
# cut into m log-spaced buckets of ratio (b/a)^(1/m) <= GAMMA; above 24 h the ratio is GAMMA, up to ten years
# (later replies share the last bucket). Bucket k holds (UPPER[k-1], UPPER[k]]. Migration m18r's
# metric_reply_bucket embeds the same bounds (width_bucket: one binary search, inlined into the caller);
# tests/metrics check that both agree.
GAMMA = 1.02
EDGES = (0.1, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
CEILING = 86400.0 * 3653  # ten years
NO_REPLY = -1


def _uppers() -> list[float]:
    out = [EDGES[0]]
    for a, b in itertools.pairwise(EDGES):
        m = math.ceil(math.log(b / a) / math.log(GAMMA))
        out += [a * (b / a) ** (k / m) for k in range(1, m)] + [b]
    top = math.ceil(math.log(CEILING / EDGES[-1]) / math.log(GAMMA))
    return out + [EDGES[-1] * GAMMA**k for k in range(1, top + 1)]


UPPER = _uppers()
TOP = UPPER.index(EDGES[-1])  # the last bucket at or below 24 h
# the last bucket of the delays <= t, for every edge t: "replied within t" is bucket <= LAST[t], exactly
LAST: dict[float, int] = {edge: UPPER.index(edge) for edge in EDGES}


def bucket_of(seconds: float) -> int:
    """Python mirror of the SQL metric_reply_bucket (tests and docs)."""
    return bisect.bisect_left(UPPER, seconds)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """(low, high]: the delays a bucket holds (bucket 0: up to 0.1 s; the last: beyond ten years)."""
    if bucket == 0:
        return (0.0, EDGES[0])
    return (UPPER[bucket - 1], UPPER[bucket] if bucket < len(UPPER) else math.inf)


def last_bucket(seconds: float) -> int:
    """The last bucket of the delays <= `seconds` (an edge, or below 0: none, or beyond every delay)."""
    if seconds < 0:
        return NO_REPLY
    return LAST.get(seconds, 10**9)


# Levels (metric_reply_rollups.view = "<level>.<grain>"): keeps property, source, owner.
LEVELS: dict[str, tuple[bool, bool, bool]] = {
    "n": (False, False, False),
    "s": (False, True, False),
    "p": (True, False, False),
    "o": (False, False, True),
}
# The grains each level keeps (migration r19g): weeks only at level n, which answers the week grouping. A week of
# a property or owner holds a few replies a bucket, so its row count is ~70 % of its seven days' (and a window's
# partial months are mostly read as the month minus the days outside): the s / p / o weeks were 29 % of the rows
# for ~10 % fewer rows read on a mid-month window.
LEVEL_GRAINS: dict[str, tuple[str, ...]] = {"n": ("d", "w", "m"), "s": ("d", "m"), "p": ("d", "m"), "o": ("d", "m")}
RKEY = "org_id, view, day, tz, property_id, source, owner_id, kind, bucket"
MEASURES = ("automated", "human", "first", "automated_ms", "human_ms", "first_ms")
RCOLUMNS = f"{RKEY}, {', '.join(MEASURES)}"
SUMS = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
SUM_NONZERO = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
# a cohort row `b` (base delta or raw lead) as its three (bucket, counts, milliseconds) rows
EXPAND = (
    "CROSS JOIN LATERAL (VALUES "
    f"(COALESCE({{a}}, {NO_REPLY}), {{n}}, 0, 0, {{a_ms}}, 0::bigint, 0::bigint), "
    f"(COALESCE({{h}}, {NO_REPLY}), 0, {{n}}, 0, 0::bigint, {{h_ms}}, 0::bigint), "
    f"(COALESCE({{f}}, {NO_REPLY}), 0, 0, {{n}}, 0::bigint, 0::bigint, {{f_ms}})"
    ") x(bucket, automated, human, first, automated_ms, human_ms, first_ms)"
)
BASE_EXPAND = EXPAND.format(
    a="b.reply_a", h="b.reply_h", f="b.reply_f", n="b.leads", a_ms="b.reply_a_ms", h_ms="b.reply_h_ms",
    f_ms="b.reply_f_ms",
)  # fmt: skip
X_MEASURES = ", ".join(f"x.{m}" for m in MEASURES)


# Trailing windows (migration y23t): levels s, p and o also keep, per organization and timezone, the histograms of
# the last 30 and 365 local days ending on the day `metric_reply_trailing` names (today, moved by roll_trailing):
# view `<level>.t<span>`. The default 30-day window and a year ending now read one row per group and
# bucket: a property's month already holds ~60 % of its year's buckets, so a year read as twelve months cost
# ~250 k rows at 1 M leads for ~34 k cells. Level n reads a year from its small month rows.
TRAILING_LEVELS = ("s", "p", "o")
TRAILING_SPANS = (30, 365)
TRAILING_VIEWS = ", ".join(f"'{level}.t{span}'" for level in TRAILING_LEVELS for span in TRAILING_SPANS)
# folds and the roll serialize on this: a fold adds deltas to the windows its marker names, a roll replaces them
# and moves the marker (folds share the lock, a roll takes it alone)
TRAILING_LOCK = "hashtextextended('metric-reply-trailing', 0)"
# a window's rows carry no day of their own (the marker says which day they end on), so moving the window by a
# day rewrites only the rows of the two days it gains and loses
TRAILING_ROW_DAY = "DATE '0001-01-01'"
_SPANS = ", ".join(f"({span})" for span in TRAILING_SPANS)
_DAY_VIEWS = ", ".join(f"'{level}.d'" for level in TRAILING_LEVELS)


def trailing_rows(rows: str) -> str:
    """The trailing-window rows of the base rows `rows`: a cohort row of local day D counts in the window of
    `span` days ending on E (its organization and timezone's marker) when E - span < D <= E (a NULL day: none)."""
    values = ", ".join(
        f"('{name}', {str(p).lower()}, {str(s).lower()}, {str(o).lower()})"
        for name in TRAILING_LEVELS
        for p, s, o in (LEVELS[name],)
    )
    return (
        f"SELECT b.org_id, v.name || '.t' || w.span AS view, {TRAILING_ROW_DAY} AS day, b.tz, "
        f"CASE WHEN v.p THEN b.property_id ELSE {ZERO} END AS property_id, "
        "CASE WHEN v.s THEN b.source ELSE '' END AS source, "
        f"CASE WHEN v.o THEN b.owner_id ELSE {ZERO} END AS owner_id, b.kind, x.bucket, {X_MEASURES} "
        f"FROM ({rows}) b JOIN metric_reply_trailing t ON t.org_id = b.org_id AND t.tz = b.tz "
        f"JOIN (VALUES {_SPANS}) w(span) ON b.day > t.day - w.span AND b.day <= t.day "
        f"CROSS JOIN (VALUES {values}) v(name, p, s, o) {BASE_EXPAND} WHERE b.view = 'cohort'"
    )


def trailing_insert(markers: str) -> str:
    """INSERT of the trailing windows ending on the days `markers` names (a relation of org_id, tz, day), summed
    from the level's rows: whole months from month rows, the days around them from day rows."""
    # per window, its days [a, b): months [ma, mb) when there are whole ones, days before and after them
    span = (
        "SELECT y.org_id, y.tz, y.day, w.span, a, b, "
        "(date_trunc('month', (a - 1)::timestamp) + interval '1 month')::date AS ma, "
        "date_trunc('month', b::timestamp)::date AS mb "
        f"FROM ({markers}) y CROSS JOIN (VALUES {_SPANS}) w(span) "
        "CROSS JOIN LATERAL (SELECT y.day - w.span + 1 AS a, y.day + 1 AS b) ab WHERE y.day IS NOT NULL"
    )
    levels = ", ".join(f"('{level}')" for level in TRAILING_LEVELS)
    read = (
        "SELECT s.org_id, s.tz, s.day AS at, s.span, l.level, g.grain, g.lo, g.hi FROM spans s "
        f"CROSS JOIN (VALUES {levels}) l(level) "
        "CROSS JOIN LATERAL (VALUES ('d', s.a, LEAST(s.ma, s.b)), ('m', s.ma, s.mb), "
        "('d', GREATEST(s.mb, s.ma), s.b)) g(grain, lo, hi) WHERE g.lo < g.hi"
    )
    return (
        f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) WITH spans AS ({span}) "
        f"SELECT r.org_id, p.level || '.t' || p.span, {TRAILING_ROW_DAY}, r.tz, r.property_id, r.source, "
        f"r.owner_id, r.kind, r.bucket, {SUMS} FROM ({read}) p JOIN metric_reply_rollups r ON r.org_id = p.org_id "
        "AND r.view = p.level || '.' || p.grain AND r.tz = p.tz AND r.day >= p.lo AND r.day < p.hi "
        "GROUP BY r.org_id, p.level, p.span, r.tz, r.property_id, r.source, r.owner_id, r.kind, r.bucket "
        f"HAVING {SUM_NONZERO}"
    )


def trailing_shift() -> str:
    """Upsert moving one organization's and timezone's windows (:org, :tz) from ending on :old to ending on :new
    (later): each gains the day rows of (old, new] and loses those of its first days [old - span + 1, new - span +
    1). A few thousand rows instead of the window's."""
    edges = " UNION ALL ".join(
        f"SELECT {span} AS span, {sign} AS sign, r.* FROM metric_reply_rollups r WHERE r.org_id = :org "
        f"AND r.view IN ({_DAY_VIEWS}) AND r.tz = :tz AND r.day >= CAST(:old AS date) + {offset} "
        f"AND r.day < CAST(:new AS date) + {offset}"
        for span in TRAILING_SPANS
        for sign, offset in ((1, 1), (-1, 1 - span))
    )
    return (
        f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) "
        f"SELECT e.org_id, left(e.view, 1) || '.t' || e.span, {TRAILING_ROW_DAY}, e.tz, e.property_id, e.source, "
        f"e.owner_id, e.kind, e.bucket, {', '.join(f'sum(e.sign * e.{m}) AS {m}' for m in MEASURES)} "
        f"FROM ({edges}) e "
        "GROUP BY e.org_id, e.view, e.span, e.tz, e.property_id, e.source, e.owner_id, e.kind, e.bucket "
        f"ON CONFLICT ({RKEY}) DO UPDATE SET "
        + ", ".join(f"{m} = metric_reply_rollups.{m} + EXCLUDED.{m}" for m in MEASURES)
    )


def reply_rows(
    rows: str,
    levels: dict[str, tuple[bool, bool, bool]] = LEVELS,
    grains: tuple[str, ...] = GRAINS,
    trailing: bool = True,
) -> str:
    """Every reply rollup row of the base rows `rows` (a relation with rollups.BASE_COLUMNS), not yet summed: each
    level at those of `grains` it keeps (LEVEL_GRAINS), and with `trailing` the trailing windows (trailing_rows)."""
    values = ", ".join(
        f"('{name}.{grain}', '{grain}', {str(p).lower()}, {str(s).lower()}, {str(o).lower()})"
        for name, (p, s, o) in levels.items()
        for grain in grains
        if grain in LEVEL_GRAINS[name]
    )
    return (
        "SELECT b.org_id, v.name AS view, CASE v.grain WHEN 'd' THEN b.day "
        "WHEN 'w' THEN date_trunc('week', b.day::timestamp)::date "
        "ELSE date_trunc('month', b.day::timestamp)::date END AS day, b.tz, "
        f"CASE WHEN v.p THEN b.property_id ELSE {ZERO} END AS property_id, "
        "CASE WHEN v.s THEN b.source ELSE '' END AS source, "
        f"CASE WHEN v.o THEN b.owner_id ELSE {ZERO} END AS owner_id, b.kind, x.bucket, {X_MEASURES} "
        f"FROM ({rows}) b CROSS JOIN (VALUES {values}) v(name, grain, p, s, o) {BASE_EXPAND} "
        "WHERE b.view = 'cohort'" + (f" UNION ALL {trailing_rows(rows)}" if trailing else "")
    )


def upsert(src: str) -> str:
    return (
        f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) SELECT {RCOLUMNS} FROM {src} ON CONFLICT ({RKEY}) "
        f"DO UPDATE SET {', '.join(f'{m} = metric_reply_rollups.{m} + EXCLUDED.{m}' for m in MEASURES)}"
    )


def rebuild_statements(org_filter: str = "org_id = :org", base: str = "metric_base") -> list[str]:
    """INSERTs filling metric_reply_rollups from the base rows in `base`: each one-dimension level's days from
    the base rows, `n` from `s`, weeks (level n) and months from days."""
    out = []
    for level in ("s", "p", "o"):
        rows = reply_rows(f"SELECT * FROM {base} WHERE {org_filter}", {level: LEVELS[level]}, ("d",), trailing=False)
        out.append(
            f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) SELECT {RKEY}, {SUMS} FROM ({rows}) r "
            f"GROUP BY {RKEY} HAVING {SUM_NONZERO}"
        )
    out.append(
        f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) SELECT org_id, 'n.d', day, tz, property_id, '', owner_id, "
        f"kind, bucket, {SUMS} FROM metric_reply_rollups WHERE {org_filter} AND view = 's.d' "
        f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING {SUM_NONZERO}"
    )
    for level in LEVELS:
        for grain, unit in (("w", "week"), ("m", "month")):
            if grain not in LEVEL_GRAINS[level]:
                continue
            out.append(
                f"INSERT INTO metric_reply_rollups ({RCOLUMNS}) SELECT org_id, '{level}.{grain}', "
                f"date_trunc('{unit}', day::timestamp)::date, tz, property_id, source, owner_id, kind, bucket, {SUMS} "
                f"FROM metric_reply_rollups WHERE {org_filter} AND view = '{level}.d' "
                f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING {SUM_NONZERO}"
            )
    # trailing windows: a timezone met for the first time ends them today (by the database clock; roll_trailing
    # moves them to the application's), one kept before stays at its day
    out.append(
        "INSERT INTO metric_reply_trailing (org_id, tz, day) SELECT DISTINCT org_id, tz, "
        "(now() AT TIME ZONE tz)::date FROM metric_reply_rollups "
        f"WHERE {org_filter} AND view = 'n.m' ON CONFLICT (org_id, tz) DO NOTHING"
    )
    out.append(trailing_insert(f"SELECT * FROM metric_reply_trailing WHERE {org_filter}"))
    return out


def disagreements_sql(deltas: str, base: str) -> str:
    """Reply rollup keys where rollups + deltas differ from a recomputation (`base`: recomputed base rows)."""
    differ = " OR ".join(f"k.{m} IS DISTINCT FROM f.{m}" for m in MEASURES)
    return f"""
    WITH kept AS (
      SELECT {RKEY}, {SUMS} FROM (
        SELECT {RCOLUMNS} FROM metric_reply_rollups WHERE org_id = :org
        UNION ALL SELECT {RKEY}, {", ".join(MEASURES)} FROM ({reply_rows(deltas)}) d) k
      GROUP BY {RKEY} HAVING {SUM_NONZERO}
    ), fresh AS (
      SELECT {RKEY}, {SUMS} FROM ({reply_rows(base)}) r GROUP BY {RKEY} HAVING {SUM_NONZERO}
    )
    SELECT COALESCE(k.view, f.view) AS view, COALESCE(k.day, f.day) AS day, COALESCE(k.bucket, f.bucket) AS bucket,
           {", ".join(f"k.{m} AS kept_{m}, f.{m} AS fresh_{m}" for m in MEASURES)}
    FROM kept k FULL JOIN fresh f USING ({RKEY})
    WHERE {differ}
    """
