"""survey stage (see ../shared/DESIGN.md)."""
