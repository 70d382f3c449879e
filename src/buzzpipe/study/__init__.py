"""study stage (see ../shared/DESIGN.md)."""
