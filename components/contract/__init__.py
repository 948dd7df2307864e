"""The contract of every config field: its edit effect, its path, its labels and annotations."""
