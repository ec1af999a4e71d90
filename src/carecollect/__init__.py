"""carecollect."""
