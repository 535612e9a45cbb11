"""Supervised fine-tuning of a student on a curated dataset version (TRL SFTTrainer, full or LoRA)."""
