"""Every enumerated value of the domain, in one place (DESIGN.md §5.6)."""

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    agent = "agent"


class ContactKind(StrEnum):
    tenant = "tenant"
    owner = "owner"


class IdentityKind(StrEnum):
    email = "email"
    phone = "phone"


class LeadStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    qualified = "qualified"
    tour_requested = "tour_requested"
    tour_booked = "tour_booked"
    toured = "toured"
    application_started = "application_started"
    application_submitted = "application_submitted"
    leased = "leased"
    nurture = "nurture"
    lost = "lost"


class Temperature(StrEnum):
    hot = "hot"
    cold = "cold"


class LostReason(StrEnum):
    unresponsive = "unresponsive"
    rented_elsewhere = "rented_elsewhere"
    price = "price"
    not_qualified = "not_qualified"
    no_availability = "no_availability"
    timing = "timing"
    location = "location"
    duplicate = "duplicate"
    spam = "spam"
    other = "other"


class SignalEvent(StrEnum):
    """What a normalized inbound signal says happened."""

    inquiry = "inquiry"
    tour_request = "tour_request"
    question = "question"
    application = "application"
    reply = "reply"
    missed_call = "missed_call"
    call = "call"
    sms_inbound = "sms_inbound"
    opt_out = "opt_out"
    opt_in = "opt_in"
    help = "help"


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    web = "web"
    ils = "ils"
    walk_in = "walk_in"
    other = "other"


class InboundKind(StrEnum):
    email = "email"
    sendgrid = "sendgrid"
    mailgun = "mailgun"
    postmark = "postmark"
    zillow = "zillow"
    mits = "mits"
    web_form = "web-form"
    webflow = "webflow"
    callrail = "callrail"
    twilio_voice = "twilio/voice"
    twilio_sms = "twilio/sms"
    ringcentral = "ringcentral"


class InboundStatus(StrEnum):
    received = "received"
    processed = "processed"
    ignored = "ignored"
    failed = "failed"


class MatchVerdict(StrEnum):
    new = "new"
    existing = "existing"
    review = "review"


class EventType(StrEnum):
    """lead_event.type: every kind of entry on a lead's timeline."""

    # touches
    inquiry = "inquiry"
    tour_request = "tour_request"
    question = "question"
    call = "call"
    missed_call = "missed_call"
    sms_in = "sms_in"
    sms_out = "sms_out"
    email_in = "email_in"
    email_out = "email_out"
    application = "application"
    reply = "reply"
    opt_out = "opt_out"
    opt_in = "opt_in"
    # pipeline
    created = "created"
    status_changed = "status_changed"
    owner_changed = "owner_changed"
    temperature_changed = "temperature_changed"
    fields_updated = "fields_updated"
    property_changed = "property_changed"
    next_action_set = "next_action_set"
    # work
    note = "note"
    task_created = "task_created"
    task_completed = "task_completed"
    call_logged = "call_logged"
    meeting_logged = "meeting_logged"
    tour_scheduled = "tour_scheduled"
    tour_completed = "tour_completed"
    tour_canceled = "tour_canceled"
    tour_no_show = "tour_no_show"
    invitation_sent = "invitation_sent"
    # identity
    match = "match"
    merged = "merged"
    unmerged = "unmerged"
    # owners (assignment, offers, claims, SLA): data carries the reason in words and the times metrics read
    owner_assigned = "owner_assigned"
    offer_made = "offer_made"
    offer_accepted = "offer_accepted"
    offer_declined = "offer_declined"
    offer_expired = "offer_expired"
    lead_claimed = "lead_claimed"
    sla_breached = "sla_breached"
    lead_pooled = "lead_pooled"
    collaborators_changed = "collaborators_changed"
    # messaging (outbox state changes that belong on the timeline)
    message_queued = "message_queued"
    message_sent = "message_sent"
    message_delivered = "message_delivered"
    message_failed = "message_failed"
    message_suppressed = "message_suppressed"
    sensitive_conversation = "sensitive_conversation"
    # automation
    sequence_started = "sequence_started"
    sequence_stopped = "sequence_stopped"
    reactivated = "reactivated"
    # tours (tour_scheduled above is the booking; these are the lifecycle the rules listen to)
    tour_booked = "tour_booked"
    tour_rescheduled = "tour_rescheduled"
    tour_starting = "tour_starting"


class NextActionType(StrEnum):
    text_back = "text_back"
    call = "call"
    reply = "reply"
    schedule_tour = "schedule_tour"
    confirm_tour = "confirm_tour"
    application_reminder = "application_reminder"
    reactivation = "reactivation"
    nurture = "nurture"
    review = "review"
    none = "none"
    # automation (workflow map): the step after a booking, a tour, a no-show, a submitted application
    tour = "tour"
    follow_up = "follow_up"
    reschedule_tour = "reschedule_tour"
    review_application = "review_application"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    canceled = "canceled"


class TaskType(StrEnum):
    call = "call"
    email = "email"
    text = "text"
    tour = "tour"
    follow_up = "follow_up"
    other = "other"


class ActivityKind(StrEnum):
    call = "call"
    meeting = "meeting"
    email = "email"
    text = "text"


class ActivityDirection(StrEnum):
    outbound = "outbound"
    inbound = "inbound"


class TourStatus(StrEnum):
    scheduled = "scheduled"
    completed = "completed"
    canceled = "canceled"
    no_show = "no_show"


class TourType(StrEnum):
    in_person = "in_person"
    virtual = "virtual"
    self_guided = "self_guided"


class ReviewStatus(StrEnum):
    open = "open"
    merged = "merged"
    kept_apart = "kept_apart"
    resolved = "resolved"  # a sensitive conversation a person took over


class ConsentState(StrEnum):
    unknown = "unknown"
    opted_in = "opted_in"
    opted_out = "opted_out"


# tours and units (issue #12)
class UnitStatus(StrEnum):
    available = "available"
    on_notice = "on_notice"
    leased = "leased"
    down = "down"


class PetPolicy(StrEnum):
    allowed = "allowed"
    cats_only = "cats_only"
    dogs_only = "dogs_only"
    case_by_case = "case_by_case"
    not_allowed = "not_allowed"
