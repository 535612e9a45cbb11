"""The selection-ablation experiment: one dataset + fine-tune + evaluation per selection policy."""
