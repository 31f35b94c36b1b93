"""Our worker with ``task_reject_on_worker_lost`` turned off, to show what that setting buys."""

from broadsheet.worker import celery, flask_app

celery.conf.task_reject_on_worker_lost = False

__all__ = ["celery", "flask_app"]
