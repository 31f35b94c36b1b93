"""Analytics without spying: page views counted on the server, and the figures staff read.

Views are counted in the web process (``counting``: a WSGI layer outside the
page cache, so cached pages count too), kept in memory for about a second
and written in batches to per-minute rows (``recording``), rolled up to daily
rows on the beat (``rollup``), and read back by the dashboards and the Admin
API (``figures``, ``posts``), which decide who may see what.  Charts are
drawn on the server as SVG (``charts``).  No address, cookie or full user
agent is ever stored: a visitor is a daily mark, a hash keyed by a salt that
is deleted once its day is over.
"""
