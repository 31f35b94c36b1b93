"""The Celery application for ``celery -A broadsheet.worker worker`` and ``beat``."""

from broadsheet import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
