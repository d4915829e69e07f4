"""OnceCal: one-time booking links."""
