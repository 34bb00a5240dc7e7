"""Code that runs inside Backend.AI sessions: dataset preparation, fine-tuning, evaluation."""
