"""DeepSpeed trainers, one explicit training loop per model role."""
