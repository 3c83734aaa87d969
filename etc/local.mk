## etc files
