"""One email-address check for the whole app: staff accounts and subscribers agree."""

from __future__ import annotations

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from broadsheet.accounts.models import User
from broadsheet.errors import Invalid
from broadsheet.extensions import db
from broadsheet.newsletter import services
from broadsheet.newsletter.models import Subscriber
from tests.conftest import NOW


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("reader@example.com", True),
        ("first.last+tag@mail.example.org", True),
        ("owner@localhost", False),  # no dotted domain: accounts took it, the newsletter did not
        ("two@@example.com", False),
        ("spa ce@example.com", False),
        ("dot@example.", False),
        ("x" * 250 + "@example.com", False),
    ],
)
def test_staff_and_subscribers_accept_the_same_addresses(
    runner: FlaskCliRunner, address: str, accepted: bool
) -> None:
    result = runner.invoke(
        args=["user", "create", address, "--role", "author", "--password", "long enough!"]
    )
    staff_ok = result.exit_code == 0
    try:
        services.subscribe(db.session, email=address, now=NOW)
        db.session.commit()
        reader_ok = True
    except Invalid:
        db.session.rollback()
        reader_ok = False
    assert (staff_ok, reader_ok) == (accepted, accepted), result.output
    users = db.session.scalar(select(func.count()).select_from(User))
    subscribers = db.session.scalar(select(func.count()).select_from(Subscriber))
    assert (users, subscribers) == (int(accepted), int(accepted))
