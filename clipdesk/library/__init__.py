"""The photo library: SQLite store (schema, store), folder scanning, decoding, thumbnails and the indexer.

Plain Python and numpy, no Qt and no torch: the CLI, the GUI and search all use it. Start with
`store.Library` (reading) and `indexer.index_folders` (building).
"""
