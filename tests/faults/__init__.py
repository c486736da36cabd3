"""The fault suite: real reactor processes, the double in its own process, a cuttable proxy."""
