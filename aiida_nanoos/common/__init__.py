"""Small helpers every layer shares (pure Python, no AiiDA): written once here, imported everywhere else."""
