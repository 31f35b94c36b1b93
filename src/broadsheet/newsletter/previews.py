"""The newsletter email of a post, before it goes: shown to its editor, or sent to them alone.

The preview is the very message a subscriber would get (the same composer),
with unsubscribe links that belong to nobody.  A test send goes through the
outbox like every other one-off email (a record, retries, the sweeper) and
only ever to the address of the staff member who asked: the service takes
it from the actor, never from the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_mailman import EmailMultiAlternatives

from broadsheet.accounts.permissions import Actor
from broadsheet.content.staff_queries import staff_post
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession
from broadsheet.newsletter.emails import NewsletterComposer
from broadsheet.outbox.models import OutboxEmail
from broadsheet.outbox.services import queue_email

TEST_EMAIL_TASK = "broadsheet.send_test_email"
TEST_EMAIL_KIND = "test_email"


def preview_email(
    session: DbSession, post_id: int, *, actor: Actor, config: Mapping[str, Any]
) -> EmailMultiAlternatives:
    """The post's saved version as a subscriber's email, for someone who may edit it."""
    staff_post(session, post_id, actor=actor)  # NotFound, or Forbidden to who may not edit it
    email = getattr(actor, "email", None) or "subscriber@example.com"
    return NewsletterComposer(session, post_id, config).compose_preview(email)


def send_test_email(
    session: DbSession, post_id: int, *, actor: Actor, now: datetime
) -> OutboxEmail:
    """Queue the post's email to ``actor``'s own address, after commit; flushes, never commits."""
    staff_post(session, post_id, actor=actor)  # NotFound, or Forbidden to who may not edit it
    address = getattr(actor, "email", None)
    if not address:
        raise Invalid({"email": "a test email goes to a staff member's own address"})
    return queue_email(
        session, task=TEST_EMAIL_TASK, kind=TEST_EMAIL_KIND, ref_id=post_id, recipient=address,
        now=now,
    )  # fmt: skip
