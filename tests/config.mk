## tests (config)
