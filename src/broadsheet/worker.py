"""The Celery application for ``celery -A broadsheet.worker worker`` and ``beat``.

A worker or beat process runs one app, so this entry point (and only it) makes
that app the process's default Celery app: the one shared tasks resolve to.
"""

from broadsheet import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
celery.set_default()
