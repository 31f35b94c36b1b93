"""Helpers for the import and export tests: the fixtures' folder, and an import run as the
command line runs one (summary, then the job, committing after each batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broadsheet.accounts.permissions import OPERATOR, Actor
from broadsheet.extensions import db
from broadsheet.porting import services as porting
from broadsheet.porting.models import ImportJob
from tests.conftest import NOW

FIXTURES = Path(__file__).parent / "fixtures" / "porting"
# WordPress's own theme unit test export, beside the repository (never copied into it).
REFERENCE_WXR = Path(__file__).parents[2] / "shared" / "data" / "wp-themeunittestdata.xml"


def start(path: Path, folder: Path, actor: Actor = OPERATOR, **options: Any) -> ImportJob:
    with path.open("rb") as upload:
        job = porting.start_import(db.session, actor=actor, now=NOW, upload=upload,
                                   filename=path.name, folder=folder, **options)  # fmt: skip
    db.session.commit()
    return job


def import_file(path: Path, folder: Path, actor: Actor = OPERATOR) -> ImportJob:
    job = start(path, folder, actor)
    for _done in porting.run_import(db.session, job, actor=actor, now=NOW):
        db.session.commit()
    return job


def write_wxr(path: Path, posts: int, *, paragraphs: int = 3, gallery: bool = False) -> Path:
    """A WordPress export of ``posts`` published posts by one author, with two categories;
    ``gallery``: each post ends with a gallery of the export's one image."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:wp="http://wordpress.org/export/1.2/"><channel>\n'
            "<title>Generated</title><wp:wxr_version>1.2</wp:wxr_version>"
            "<wp:base_site_url>https://generated.example.com</wp:base_site_url>\n"
            "<wp:author><wp:author_login>gen</wp:author_login>"
            "<wp:author_email>gen@example.com</wp:author_email>"
            "<wp:author_display_name>Gen Writer</wp:author_display_name></wp:author>\n"
            "<wp:category><wp:term_id>1</wp:term_id><wp:category_nicename>alpha"
            "</wp:category_nicename><wp:cat_name>Alpha</wp:cat_name></wp:category>\n"
        )
        body = "\n\n".join(
            f"<p>Paragraph {n} with <em>some</em> words about gardens and "
            "<a href='https://example.com/'>a link</a>.</p>"
            for n in range(paragraphs)
        )
        if gallery:
            out.write(
                "<item><title>Bed</title><wp:post_id>90000</wp:post_id>"
                "<wp:post_type>attachment</wp:post_type><wp:attachment_url>"
                "https://generated.example.com/uploads/bed.jpg</wp:attachment_url></item>\n"
            )
            body += '\n\n[gallery ids="90000"]'

        for n in range(1, posts + 1):
            day = 1 + n % 28
            out.write(
                f"<item><title>Generated post {n}</title>"
                f"<link>https://generated.example.com/2020/01/generated-post-{n}/</link>"
                f"<dc:creator>gen</dc:creator><content:encoded><![CDATA[{body}]]>"
                f"</content:encoded><wp:post_id>{n}</wp:post_id>"
                f"<wp:post_date_gmt>2020-01-{day:02d} 10:00:00</wp:post_date_gmt>"
                f"<wp:post_name>generated-post-{n}</wp:post_name>"
                "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>"
                '<category domain="category" nicename="alpha">Alpha</category></item>\n'
            )
        out.write("</channel></rss>\n")
    return path
