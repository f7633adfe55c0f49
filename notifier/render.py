"""Notification text: an event (or a storm of them) -> a title and a body a person reads at a glance.

Default text per event type: what happened, platform and account, the caption's first 80
characters, the error message or the published URL, the post (or account / pack) id, and always the event type.
A subscription may override title and/or body with Jinja2 templates, rendered in a sandbox that refuses
access to Python internals; ``template_problem`` is the check run when a subscription is saved.

In a storm summary, a subscription's title template gives each listed event's line.

Template variables: ``event`` (the event as JSON-like dicts), ``type``, ``subject_id``, ``platforms``,
``account_ids``, ``caption`` (first 80 characters), ``error``, ``url`` (published URL), ``title`` and ``body``
(the default text).

Pure: no I/O, no clock, no logging. Must not import: httpx, redis, apprise, litestar, prometheus_client.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import jinja2
import jinja2.meta
import msgspec
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from notifier.models import AccountRef, Event, EventType, PackRef, PostRef, Templates

CAPTION_CHARS = 80
TEMPLATE_MAX_CHARS = 4000
#: A storm summary lists this many events, then "... and N more".
SUMMARY_MAX_LINES = 50
TEMPLATE_VARIABLES = frozenset(
    {"event", "type", "subject_id", "platforms", "account_ids", "caption", "error", "url", "title", "body"}
)


@dataclass(frozen=True)
class Message:
    """What apprise sends. ``level`` is apprise's notify type: info, success, warning or failure."""

    title: str
    body: str
    level: str = "info"
    #: Set when a subscription template failed at render time and the default text was used instead.
    template_error: str | None = None


_LEVELS: dict[str, str] = {
    EventType.POST_POSTED.value: "success",
    EventType.DELIVERY_POSTED.value: "success",
    EventType.DELIVERY_PUBLISHED.value: "success",
    EventType.POST_FAILED.value: "failure",
    EventType.DELIVERY_FAILED.value: "failure",
    EventType.POST_PARTIAL.value: "warning",
    EventType.POST_OVERDUE.value: "warning",
    EventType.ACCOUNT_REMOVED.value: "warning",
}


def short_caption(caption: str | None) -> str:
    text = " ".join((caption or "").split())
    return text if len(text) <= CAPTION_CHARS else text[: CAPTION_CHARS - 1].rstrip() + "…"


def _who(account: AccountRef | None) -> str:
    if account is None:
        return ""
    name = f"@{account.username}" if account.username else account.id
    if account.display_name and account.display_name != account.username:
        name += f" ({account.display_name})"
    return name


def _where(event: Event) -> str:
    platforms = ", ".join(event.platforms)
    who = _who(event.account)
    return " ".join(part for part in (platforms, who) if part)


def _field(event: Event, name: str) -> Any:
    return (event.current or {}).get(name)


def _changes(event: Event) -> str:
    before, after = event.previous or {}, event.current or {}
    parts = [f"{k} {before.get(k)!s} → {after.get(k)!s}" for k in after if before.get(k) != after.get(k)]
    return ", ".join(parts)


def _headline(event: Event) -> str:
    where = _where(event)
    on = f" on {where}" if where else ""
    post: PostRef | None = event.post
    pack: PackRef | None = event.pack
    previous = (event.previous or {}).get("status")
    match event.type:
        case EventType.POST_STATUS_CHANGED:
            return f"Post status changed: {previous or 'new'} → {_field(event, 'status')}"
        case EventType.POST_POSTED:
            return f"Post published{on}"
        case EventType.POST_FAILED:
            return f"Post failed{on}"
        case EventType.POST_PARTIAL:
            return f"Post only partly published{on}"
        case EventType.POST_OVERDUE:
            return f"Post overdue: still {post.status if post else 'unpublished'} past its scheduled time{on}"
        case EventType.DELIVERY_POSTED:
            return f"Posted{on}"
        case EventType.DELIVERY_FAILED:
            return f"Delivery failed{on}"
        case EventType.DELIVERY_PUBLISHED:
            return f"Live{on}"
        case EventType.ACCOUNT_ADDED:
            return f"Account added: {where}"
        case EventType.ACCOUNT_REMOVED:
            return f"Account removed: {where}"
        case EventType.ACCOUNT_CHANGED:
            return f"Account changed: {where}"
        case EventType.PACK_ADDED:
            return f"Pack added: {pack.name if pack else event.subject_id}"
        case EventType.PACK_CHANGED:
            return f"Pack changed: {pack.name if pack else event.subject_id}"
    return f"{event.type}{on}"


def render_event(event: Event) -> Message:
    """The default title and body of one event."""
    lines: list[str] = []
    where = _where(event)
    if where and event.post is not None:
        lines.append(f"Where: {where}")
    if event.post is not None and event.post.caption:
        lines.append(f"Caption: {short_caption(event.post.caption)}")
    if error := _field(event, "error_message"):
        lines.append(f"Error: {error}")
    if url := _field(event, "published_url"):
        lines.append(f"URL: {url}")
    if event.type == EventType.POST_OVERDUE and event.post is not None and event.post.scheduled_at:
        lines.append(f"Scheduled at: {event.post.scheduled_at}")
    if event.type in (EventType.ACCOUNT_CHANGED, EventType.PACK_CHANGED) and (changes := _changes(event)):
        lines.append(f"Changed: {changes}")
    if event.pack is not None:
        lines.append(f"Images: {event.pack.image_count}")
    kind = "Post" if event.post is not None else "Account" if event.account is not None else "Pack"
    lines.append(f"{kind}: {event.subject_id}")
    lines.append(f"Event: {event.type} at {event.detected_at}")
    headline = _headline(event)
    return Message(title=f"[{event.type}] {headline}", body="\n".join([headline, *lines]), level=_level(event.type))


def _level(event_type: str) -> str:
    return _LEVELS.get(event_type, "info")


def render_summary(events: Sequence[Event], *, subscription_name: str, templates: Templates | None = None) -> Message:
    """One notification standing for many events of one poll cycle (storm protection).

    Each listed event is one line: by default its type, platform and account, id and error or URL; with a
    title template, the subscription's own title for that event (the default line where the template fails).
    ``template_error`` tells the first failure.
    """
    counts = Counter(e.type for e in events)
    kinds = ", ".join(f"{n}x {t}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [f"{len(events)} events in one poll cycle for '{subscription_name}': {kinds}", ""]
    title_template = templates.title if templates is not None and templates.title else None
    template_error: str | None = None
    for event in events[:SUMMARY_MAX_LINES]:
        line = _summary_line(event)
        if title_template is not None:
            try:
                line = _render_one(title_template, template_context(event, render_event(event))).strip() or line
            except _RENDER_ERRORS as exc:
                template_error = template_error or f"{type(exc).__name__}: {exc}"
        lines.append(f"- {line}")
    if len(events) > SUMMARY_MAX_LINES:
        lines.append(f"… and {len(events) - SUMMARY_MAX_LINES} more")
    levels = {_level(e.type) for e in events}
    level = next((lv for lv in ("failure", "warning", "success") if lv in levels), "info")
    title = f"[summary] {len(events)} events: {kinds}"
    return Message(title=title, body="\n".join(lines), level=level, template_error=template_error)


def _summary_line(event: Event) -> str:
    extra = _field(event, "error_message") or _field(event, "published_url") or ""
    parts = [event.type, _where(event), f"{event.subject_id}", str(extra)]
    return " · ".join(p for p in parts if p)


def template_context(event: Event, default: Message) -> dict[str, Any]:
    return {
        "event": msgspec.to_builtins(event),
        "type": event.type,
        "subject_id": event.subject_id,
        "platforms": event.platforms,
        "account_ids": event.account_ids,
        "caption": short_caption(event.post.caption if event.post else ""),
        "error": _field(event, "error_message") or "",
        "url": _field(event, "published_url") or "",
        "title": default.title,
        "body": default.body,
    }


def render(event: Event, templates: Templates | None = None, *, default: Message | None = None) -> Message:
    """The text of one event: the default (``render_event``, or ``default`` when the caller has it already),
    with the subscription's templates applied where given."""
    default = default if default is not None else render_event(event)
    if templates is None or (not templates.title and not templates.body):
        return default
    context = template_context(event, default)
    try:
        title = _render_one(templates.title, context) if templates.title else default.title
        body = _render_one(templates.body, context) if templates.body else default.body
    except _RENDER_ERRORS as exc:
        return Message(default.title, default.body, default.level, template_error=f"{type(exc).__name__}: {exc}")
    return Message(title=title.strip() or default.title, body=body.strip() or default.body, level=default.level)


#: What a template may raise while rendering (it was checked when saved, but the event may differ).
_RENDER_ERRORS = (jinja2.TemplateError, SecurityError, ArithmeticError, TypeError, ValueError, LookupError)


class _Sandbox(SandboxedEnvironment):
    """A sandbox that fails loudly on unsafe access instead of rendering it as empty."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is not allowed")


_env = _Sandbox(undefined=jinja2.ChainableUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    """Templates are compiled once per source text: compiling costs ~100 times more than rendering."""
    return _env.from_string(source)


def _render_one(source: str, context: dict[str, Any]) -> str:
    return _compiled(source).render(context)


def template_problem(source: str) -> str | None:
    """Why ``source`` is not an acceptable template (syntax, unknown variable, unsafe access), or ``None``."""
    if len(source) > TEMPLATE_MAX_CHARS:
        return f"must be at most {TEMPLATE_MAX_CHARS} characters"
    try:
        parsed = _env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"syntax error on line {exc.lineno}: {exc.message}"
    unknown = sorted(jinja2.meta.find_undeclared_variables(parsed) - TEMPLATE_VARIABLES)
    if unknown:
        return f"unknown variable(s) {', '.join(unknown)}; available: {', '.join(sorted(TEMPLATE_VARIABLES))}"
    for sample in SAMPLE_EVENTS:
        try:
            _render_one(source, template_context(sample, render_event(sample)))
        except SecurityError as exc:
            return f"not allowed: {exc}"
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            return f"fails to render a {sample.type} event: {type(exc).__name__}: {exc}"
    return None


#: Events every template is tried on before it is accepted.
SAMPLE_EVENTS: tuple[Event, ...] = (
    Event(
        id="evt_sample_post",
        type=EventType.DELIVERY_FAILED.value,
        detected_at="2025-01-01T00:00:00.000Z",
        scope="ws_sample",
        post=PostRef(
            id="post_sample",
            caption="A sample caption",
            status="failed",
            scheduled_at="2025-01-01T00:00:00.000Z",
            created_at="2024-12-31T00:00:00.000Z",
            media_type="video",
            account_ids=["acc_sample"],
            platforms=["tiktok"],
        ),
        account=AccountRef(id="acc_sample", platform="tiktok", username="sample", display_name="Sample"),
        previous={"status": "pending", "error_message": None, "published_url": None},
        current={"status": "failed", "error_message": "Token expired", "published_url": None},
    ),
    Event(
        id="evt_sample_account",
        type=EventType.ACCOUNT_CHANGED.value,
        detected_at="2025-01-01T00:00:00.000Z",
        scope="ws_sample",
        account=AccountRef(id="acc_sample", platform="tiktok", username="sample"),
        previous={"status": "active"},
        current={"status": "expired"},
    ),
    Event(
        id="evt_sample_pack",
        type=EventType.PACK_ADDED.value,
        detected_at="2025-01-01T00:00:00.000Z",
        scope="ws_sample",
        pack=PackRef(id="pack_sample", name="Sample pack", image_count=3),
        current={"name": "Sample pack", "image_count": 3},
    ),
)
