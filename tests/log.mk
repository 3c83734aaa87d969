## tests (log)
