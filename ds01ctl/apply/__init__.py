"""Apply: carry out a plan through Docker. The only package that writes to the engine."""
