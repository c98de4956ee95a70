"""Plans: what would change and why (diff), as data (actions), and how it is shown (render)."""
