"""Imports from WordPress, Ghost and Substack, and the full export: streaming parsers, one
worker job per import with its progress in the database, safe to re-run and to crash."""
