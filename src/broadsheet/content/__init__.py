"""Posts, pages, tags and their authors."""
