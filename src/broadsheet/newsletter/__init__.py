"""The newsletter: subscribers, sends, deliveries, the worker tasks and the reader doors."""
