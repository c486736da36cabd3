"""``collMod``: only ``changeStreamPreAndPostImages``, the option change streams depend on.

Enabling it makes later writes to the collection keep their pre- and post-images for
``fullDocument: whenAvailable | required`` and ``fullDocumentBeforeChange``; each ``collMod``
also emits a ``modify`` event (seen with ``showExpandedEvents``). Every other option is refused
with 238 rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from reactor.testing.double.context import Context, command
from reactor.testing.double.replies import CommandFailed, Doc, not_supported

# Generic command fields, not collection options.
_GENERIC = frozenset(
    {"collMod", "lsid", "txnNumber", "writeConcern", "comment", "maxTimeMS", "apiVersion"}
    | {"apiStrict", "apiDeprecationErrors", "readConcern"}
)
IMAGES = "changeStreamPreAndPostImages"


@command("collMod")
async def coll_mod(ctx: Context, cmd: Doc) -> Doc:
    coll = ctx.existing(cmd, "collMod")
    if coll is None:
        raise CommandFailed(26, f"ns does not exist: {ctx.db}.{cmd.get('collMod')}")
    options = {k: v for k, v in cmd.items() if k not in _GENERIC and not k.startswith("$")}
    for option in options:
        if option != IMAGES:
            raise not_supported(f"collMod with {option}")
    description: Doc = {}
    if IMAGES in options:
        enabled = images_option(options[IMAGES])
        ctx.backend.log.set_images(ctx.db, coll.name, enabled=enabled)
        description[IMAGES] = {"enabled": enabled}
    fields = {"operationDescription": description}
    ctx.backend.log.record("modify", ctx.db, coll.name, fields=fields)
    return {}


def images_option(value: Any) -> bool:
    """``{enabled: bool}``, as ``collMod`` and ``create`` take it; code 40414/14 otherwise."""
    if not isinstance(value, dict) or "enabled" not in value:
        raise CommandFailed(40414, f"BSON field '{IMAGES}.enabled' is missing but a required field")
    if not isinstance(value["enabled"], bool):
        raise CommandFailed(14, f"BSON field '{IMAGES}.enabled' is the wrong type, expected bool")
    return bool(value["enabled"])
