"""Domain rules of OnceCal, free of request handling."""
