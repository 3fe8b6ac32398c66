"""Routes for the catalog, the targets and the caller."""
