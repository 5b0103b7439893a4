"""Data sources, one reader per source (in-memory arrays and ``.npz``, image folders, text corpora),
all behind one protocol (:mod:`supernet.data.base`). Imports ``core`` only."""
