"""Normalization of what renters type: phones, emails, names, dates and money (pure functions)."""

from shared.normalize.caller_id import ANONYMOUS_CALLER_REASON, caller_contact_name, is_caller_id_placeholder
from shared.normalize.dates import parse_move_in
from shared.normalize.email import is_placeholder_email, is_relay_email, normalize_email
from shared.normalize.money import parse_money_range
from shared.normalize.name import clean_name, split_name
from shared.normalize.phone import find_phone, is_anonymous, normalize_phone

__all__ = [
    "ANONYMOUS_CALLER_REASON",
    "caller_contact_name",
    "clean_name",
    "find_phone",
    "is_anonymous",
    "is_caller_id_placeholder",
    "is_placeholder_email",
    "is_relay_email",
    "normalize_email",
    "normalize_phone",
    "parse_money_range",
    "parse_move_in",
    "split_name",
]
