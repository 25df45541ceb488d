"""The machinery every plugin relies on; plugin authors never need to edit it."""
