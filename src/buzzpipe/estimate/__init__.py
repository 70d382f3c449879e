"""estimate stage (see ../shared/DESIGN.md)."""
