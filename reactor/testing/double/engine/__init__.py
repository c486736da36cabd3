"""The double's storage and query engine: what a MongoDB server does with documents.

Independent of the wire protocol:

- :mod:`keystring` BSON values as bytes that compare in MongoDB's order; :mod:`types` ``$type``.
- :mod:`catalog`, :mod:`collection`, :mod:`index` databases, records and sorted index entries,
  every write atomic per document.
- :mod:`matcher` query filters; :mod:`paths` dotted paths as queries read them.
- :mod:`conjuncts`, :mod:`bounds`, :mod:`partial`, :mod:`planner`, :mod:`query` index selection
  and query execution; :mod:`sorting` sort keys; :mod:`projection` find projections.
- :mod:`updates`, :mod:`operators`, :mod:`fieldpath`, :mod:`positional` update documents;
  :mod:`crud` inserts, updates and deletes with size limits.
- :mod:`aggregation`, :mod:`pipeline` aggregation (mongomock's stage handlers for most stages);
  :mod:`distinct`; :mod:`variables` which ``$$names`` an expression may use.
"""
