"""gtn-nas cluster side: everything that touches Ray, plus the CLI."""
