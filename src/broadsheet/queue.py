"""Celery, wired the way Flask documents it, plus enqueue-after-commit.

Tasks run inside an app context and drop their database session when they
finish.  Work is handed to the broker only after the transaction that
created it commits (``enqueue_after_commit``); a rollback discards it.

The embedded broker is kombu's SQLAlchemy transport on a SQLite file.  Its
transport polls once a second and cannot be told otherwise through
``broker_transport_options`` (those go to ``create_engine``), so the
``sqla`` alias is pointed at a subclass that polls more often.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app
from kombu import transport as kombu_transport
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import event
from sqlalchemy.orm import Session

from broadsheet.extensions import DbSession, db

log = logging.getLogger(__name__)
PENDING_KEY = "broadsheet.pending_tasks"
# A publish that cannot reach the broker gives up quickly: the request has
# already committed, and the sweeper on the beat picks the work up later.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class EmbeddedTransport(kombu_sqla.Transport):
    polling_interval = 0.1


kombu_transport.TRANSPORT_ALIASES["sqla"] = f"{__name__}:EmbeddedTransport"
kombu_transport.TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:EmbeddedTransport"


def celery_init_app(app: Flask) -> Celery[Any]:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def enqueue_after_commit(session: DbSession, task: str, *args: Any, **kwargs: Any) -> None:
    """Send the task named ``task`` with ids as arguments once ``session`` commits.

    Services name the task (``"broadsheet.send_batch"``) rather than import it, so that
    no service imports a tasks module.  A rollback drops what was queued.
    """
    # Begin the transaction now, so that the commit fires its hook even if nothing else ran.
    session.connection()
    session.info.setdefault(PENDING_KEY, []).append((task, args, kwargs))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    celery_app: Celery[Any] = current_app.extensions["celery"]
    for name, args, kwargs in pending:
        try:
            celery_app.tasks[name].apply_async(
                args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY
            )
        except Exception:  # the broker is down: the database still records the work
            log.warning("could not enqueue %s; the sweeper will retry", name, exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: object) -> None:
    # A savepoint rolled back inside a transaction keeps the outer transaction's work.
    if not session.in_transaction():
        session.info.pop(PENDING_KEY, None)
