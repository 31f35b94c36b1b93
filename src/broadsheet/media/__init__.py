"""Uploaded images: the rows, their variants, where posts use them, the stores, the worker."""
