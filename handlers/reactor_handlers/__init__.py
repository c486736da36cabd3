"""Built-in handlers shipped with mongo-reactor (``echo``, ``sleep``, ``ocr``, vision).

The import name is ``reactor_handlers`` rather than a bare ``handlers``: a top-level ``handlers``
package in site-packages would collide with any other project's module of that name.
"""
