"""``/ui``: the dashboard. Server-rendered pages (Jinja2, HTML-escaped), a small script that
refreshes them, a login form that sets an HttpOnly session cookie. Everything it shows is read
from MongoDB, so it survives any restart.

Each view is a pair of routes in :mod:`.pages`: the page, and its fragment that the script
fetches every few seconds and swaps in; a new view (the workflows' DAG) is a template, a reader
in :mod:`.data` and one more pair.
"""
