"""simulate stage (see ../shared/DESIGN.md)."""
