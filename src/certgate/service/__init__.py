"""What a user does: one module per task area, each operation one transaction."""
