## tests (core)
