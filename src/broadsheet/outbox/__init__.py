"""Transactional email (password resets, subscription confirmations): one row per message.

A service records the message as pending in the same transaction as the
change that calls for it, and names the task that composes and sends it;
the task claims the row, sends, and records the outcome.  A temporary
failure (no connection, a 4xx reply) is tried again on ``EMAIL_RETRY_DELAYS``;
a permanent one, or the last temporary one, leaves the row failed with the
reason, for staff to see.  The sweeper on the beat re-queues rows whose
message was lost (a broker that was down, a worker that died).
"""
