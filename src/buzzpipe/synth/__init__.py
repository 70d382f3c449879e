"""synth stage (see ../shared/DESIGN.md)."""
