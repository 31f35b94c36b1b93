"""The API doors' one handler for what the services raise."""

from __future__ import annotations

from flask import Response

from broadsheet.errors import DomainError
from broadsheet.extensions import db
from broadsheet.problems import from_domain_error


def domain_problem(error: DomainError) -> Response:
    """Nothing of a refused request is kept; the client gets a problem naming why."""
    db.session.rollback()
    return from_domain_error(error)
