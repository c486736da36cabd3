"""createIndexes decides conflicts as MongoDB 5.0 and later do (``IndexDescriptor``).

An index's signature is its key pattern, ``unique``, ``sparse``, ``partialFilterExpression`` and
collation. Indexes of different signatures may share a key pattern under different names; a
second index of the same signature under another name answers 85 IndexOptionsConflict; a name
reused for another signature answers 86 IndexKeySpecsConflict, and for the same signature with
other options (``expireAfterSeconds``, ``hidden``) 85.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

Doc = dict[str, Any]
STRING_IDS = {"job_id": {"$type": "string"}}


async def codes_of(client: AsyncMongoClient[Doc], *attempts: dict[str, Any]) -> list[int | None]:
    """Create each index in turn; the error code of each (None when it was created)."""
    codes: list[int | None] = []
    for options in attempts:
        try:
            await client.app.jobs.create_index("job_id", **options)
            codes.append(None)
        except OperationFailure as exc:
            codes.append(exc.code)
    return codes


@pytest.mark.parametrize(
    ("existing", "wanted"),
    [
        ({"name": "job_id_1"}, {"name": "job_id_unique", "unique": True}),
        ({"name": "job_id_1", "unique": True}, {"name": "partial", "unique": True,
                                                "partialFilterExpression": STRING_IDS}),
        ({"name": "job_id_1"}, {"name": "sparse", "sparse": True}),
    ],
)  # fmt: skip
async def test_another_signature_on_the_same_key_is_created_beside(
    client: AsyncMongoClient[Doc], existing: dict[str, Any], wanted: dict[str, Any]
) -> None:
    """Uniqueness, sparseness and the partial filter are part of the signature since 5.0."""
    assert await codes_of(client, existing, wanted) == [None, None]
    assert set(await client.app.jobs.index_information()) == {"_id_", existing["name"],
                                                              wanted["name"]}  # fmt: skip


async def test_the_same_signature_under_another_name_answers_85(
    client: AsyncMongoClient[Doc],
) -> None:
    """A unique job_id_1 and another unique index on job_id: 85, naming the existing one."""
    await client.app.jobs.create_index("job_id", unique=True)
    with pytest.raises(OperationFailure) as caught:
        await client.app.jobs.create_index("job_id", unique=True, name="job_id_unique")
    assert caught.value.code == 85
    assert "Index already exists with a different name: job_id_1" in str(caught.value)


async def test_the_same_signature_with_other_options_under_another_name_answers_85(
    client: AsyncMongoClient[Doc],
) -> None:
    """Same signature, another expireAfterSeconds, another name: 85 (equivalent, not equal)."""
    codes = await codes_of(
        client, {"name": "a", "expireAfterSeconds": 60}, {"name": "b", "expireAfterSeconds": 30}
    )
    assert codes == [None, 85]


@pytest.mark.parametrize(
    "changed", [{"unique": True}, {"sparse": True}, {"partialFilterExpression": STRING_IDS}]
)
async def test_a_name_reused_for_another_signature_answers_86(
    client: AsyncMongoClient[Doc], changed: dict[str, Any]
) -> None:
    """job_id_1 exists; job_id_1 again but unique, sparse or partial: 86 IndexKeySpecsConflict."""
    assert await codes_of(client, {"name": "job_id_1"}, {"name": "job_id_1", **changed}) == [
        None,
        86,
    ]


async def test_a_name_reused_for_the_same_signature_with_other_options_answers_85(
    client: AsyncMongoClient[Doc],
) -> None:
    """Same name and signature, another expireAfterSeconds: 85; the very same spec: a no-op."""
    codes = await codes_of(
        client,
        {"name": "k", "expireAfterSeconds": 60},
        {"name": "k", "expireAfterSeconds": 30},
        {"name": "k", "expireAfterSeconds": 60},
    )
    assert codes == [None, 85, None]
