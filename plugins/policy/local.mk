## plugins/policy (not built yet)
