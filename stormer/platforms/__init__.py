"""Platform plugins: one module and one class per platform (see base.Platform)."""
