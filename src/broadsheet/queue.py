"""Celery, wired the way Flask documents it, plus enqueue-after-commit.

Tasks run inside an app context and drop their database session when they
finish.  Work is handed to the broker only after the transaction that
created it commits (``enqueue_after_commit``); a rollback discards it.

Building an app changes nothing process-wide but, explicitly and once, where
kombu finds the embedded broker (``use_embedded_transport``): kombu's
SQLAlchemy transport on a SQLite file polls once a second and cannot be told
otherwise through ``broker_transport_options`` (those go to
``create_engine``), so its ``sqla``/``sqlalchemy`` aliases are pointed at a
subclass that polls more often.  It cannot be named in each app's Celery
config instead: kombu takes the transport from the URL's ``sqla+`` prefix
over the ``broker_transport`` setting, and Celery takes the URL from the
``CELERY_BROKER_URL`` environment variable over its config.

The Celery app is not made the process's current or default one: the door
holds it (``app.extensions["celery"]``), tasks reach their own app through
``self``, and the worker's entry point (``broadsheet.worker``) alone makes
its app the process default, the one Celery's shared tasks resolve to.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app
from kombu import transport as kombu_transport
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from broadsheet.extensions import DbSession, db

log = logging.getLogger(__name__)
PENDING_KEY = "broadsheet.pending_tasks"
# A publish that cannot reach the broker gives up quickly: the request has
# already committed, and the sweeper on the beat picks the work up later.
# A task that finds the database away (a restart takes seconds) tries again every 5 s for two
# minutes, rather than waiting for a sweeper's lease to run out; after that its work, still
# recorded in the database, is the sweepers'.  Pass as ``@shared_task(..., **WAIT_FOR_DATABASE)``.
WAIT_FOR_DATABASE: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_kwargs": {"countdown": 5, "max_retries": 24},
    "retry_jitter": False,
}
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


EMBEDDED_ALIASES = ("sqla", "sqlalchemy")  # sqla+sqlite:///… and sqlalchemy+sqlite:///…


class EmbeddedTransport(kombu_sqla.Transport):
    polling_interval = 0.1


def use_embedded_transport() -> None:
    """Make kombu's ``sqla+`` and ``sqlalchemy+`` URLs use ``EmbeddedTransport`` in this process.

    The one change Broadsheet makes to a library's global state; called by
    ``celery_init_app``, idempotent.  Connections already open keep theirs.
    """
    for alias in EMBEDDED_ALIASES:
        kombu_transport.TRANSPORT_ALIASES[alias] = f"{__name__}:{EmbeddedTransport.__name__}"


def celery_init_app(app: Flask) -> Celery[Any]:
    """The Celery app for ``app``, kept in ``app.extensions["celery"]``; tasks run in ``app``."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    use_embedded_transport()
    # Not the process's current app: several apps live in one process (tests, the CLI).
    celery_app = Celery(app.name, task_cls=FlaskTask, set_as_current=False)
    celery_app.config_from_object(app.config["CELERY"])
    app.extensions["celery"] = celery_app
    return celery_app


def enqueue_after_commit(
    session: DbSession, task: str, *args: Any, eta: datetime | None = None, **kwargs: Any
) -> None:
    """Send the task named ``task`` with ids as arguments once ``session`` commits.

    Services name the task (``"broadsheet.send_batch"``) rather than import it, so that
    no service imports a tasks module.  A rollback drops what was queued.  ``eta`` (an
    aware time) has the worker run it no earlier than then: the worker holds such a
    message unacknowledged until it runs, so keep it minutes away at most (RabbitMQ's
    ``consumer_timeout`` closes a channel holding one for 30 minutes by default).
    """
    # Begin the transaction now, so that the commit fires its hook even if nothing else ran.
    session.connection()
    options = {"eta": eta} if eta is not None else {}
    session.info.setdefault(PENDING_KEY, []).append((task, args, kwargs, options))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    celery_app: Celery[Any] = current_app.extensions["celery"]
    for name, args, kwargs, options in pending:
        try:
            celery_app.tasks[name].apply_async(
                args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY, **options
            )
        except Exception:  # the broker is down: the database still records the work
            log.warning("could not enqueue %s; the sweeper will retry", name, exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: object) -> None:
    # A savepoint rolled back inside a transaction keeps the outer transaction's work.
    if not session.in_transaction():
        session.info.pop(PENDING_KEY, None)
