"""The newsletter's tracking pixel and click redirect (see newsletter/tracking.py).

Neither answer is ever kept by the page cache or a browser (no-store), and
neither is a page view: their blueprint is not one the view counter reads.
A forged or altered token gets a 404 and changes nothing; with the settings
off, old emails' links still lead where they said and nothing is recorded.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect
from flask.typing import ResponseReturnValue

from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import tracking

bp = Blueprint("tracking", __name__)
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.get("/email/open/<token>.gif")
def email_open(token: str) -> ResponseReturnValue:
    config = current_app.config
    tracking.record_open(
        db.session,
        secret_key=config["SECRET_KEY"],
        token=token,
        record=bool(config["STATS_EMAIL_OPENS"]),
        now=utcnow(),
    )
    db.session.commit()
    return Response(tracking.PIXEL, mimetype="image/gif", headers=HEADERS)


@bp.get("/email/click/<token>")
def email_click(token: str) -> ResponseReturnValue:
    config = current_app.config
    target = tracking.record_click(
        db.session,
        secret_key=config["SECRET_KEY"],
        token=token,
        record=bool(config["STATS_EMAIL_CLICKS"]),
        now=utcnow(),
    )
    db.session.commit()
    response = redirect(target, code=302)
    response.headers.update(HEADERS)
    return response
