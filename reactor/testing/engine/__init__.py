"""The double's storage and query engine: what a MongoDB server does with documents.

Independent of the wire protocol: :mod:`catalog` (databases and collections), :mod:`collection`
(records and indexes, atomic per document), :mod:`matcher` (query filters), :mod:`planner` and
:mod:`query` (index selection and execution), :mod:`updates`/:mod:`operators` (update
documents), :mod:`projection`, :mod:`aggregation` (mongomock's stages over the engine's
documents) and :mod:`keystring` (BSON values as bytes that compare in MongoDB's order).
"""
